// Command go_nethttp is the Go net/http peer of mpg's HTTP showdown (bench/http/http_load.py):
// the standard library's server, a ServeMux with one handler, as a Go programmer writes it.
//
//	go_nethttp [-host 127.0.0.1] [-port 0] [-procs 0]
//
// Prints "listening <port>" once it accepts; exits on SIGINT or SIGTERM.
//
// GET /plaintext answers these 128 bytes (the Date is the current second), the same fields and
// sizes as mpg's HTTP core and the other peers; net/http orders the fields itself (the handler's
// sorted by name, then Date), so only the order differs from mpg's:
//
//	HTTP/1.1 200 OK\r\n
//	Content-Length: 13\r\n
//	Content-Type: text/plain\r\n
//	Server: mpg\r\n
//	Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n
//	\r\n
//	Hello, World!
//
// The Server value is "mpg" in every peer so that every response has the same byte count.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

var (
	body        = []byte("Hello, World!")
	serverValue = []string{"mpg"}
	typeValue   = []string{"text/plain"}
	lengthValue = []string{fmt.Sprint(len(body))}
)

// plaintext sets the header map's canonical keys directly, as TechEmpower's Go entries do, so
// no key is canonicalized per request; the values are shared, never modified.
func plaintext(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Server"] = serverValue
	h["Content-Type"] = typeValue
	h["Content-Length"] = lengthValue
	w.Write(body)
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port (0: any; the chosen one is printed)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: the Go default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_nethttp:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", plaintext)
	srv := &http.Server{Handler: mux}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
}
