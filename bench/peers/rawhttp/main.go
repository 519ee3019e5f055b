// Command go_rawhttp is the Go goroutine-per-connection raw peer of mpg's HTTP showdown
// (bench/http/http_load.py): no HTTP library, a goroutine per connection reading through a
// bufio.Reader, answering every complete request in what it has read ("\r\n\r\n" ends one; a
// request never has a body here) with one pre-built response, all of them in one write. So
// it pipelines. It is what a Go server costs when it does almost no HTTP work: the goroutine,
// the netpoller and the syscalls.
//
//	go_rawhttp [-host 127.0.0.1] [-port 0] [-procs 0]
//
// Prints "listening <port>" once it accepts; exits on SIGINT or SIGTERM.
//
// Every request is answered with these 128 bytes, byte for byte what mpg's HTTP core writes
// for GET /plaintext (the Date is rebuilt once a second by one goroutine):
//
//	HTTP/1.1 200 OK\r\n
//	Server: mpg\r\n
//	Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n
//	Content-Type: text/plain\r\n
//	Content-Length: 13\r\n
//	\r\n
//	Hello, World!
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// readBufBytes: each connection's bufio.Reader; 16 pipelined wrk requests (~2.7 KB) fit.
const readBufBytes = 4096

var (
	headEnd  = []byte("\r\n\r\n")
	response atomic.Pointer[[]byte]
)

func buildResponse(now time.Time) *[]byte {
	b := []byte("HTTP/1.1 200 OK\r\nServer: mpg\r\nDate: " + now.UTC().Format(http.TimeFormat) +
		"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	return &b
}

// keepDate swaps in a response with the new Date every second; connections load it per write.
func keepDate() {
	for now := range time.Tick(time.Second) {
		response.Store(buildResponse(now))
	}
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, readBufBytes)
	var out []byte
	for {
		// Wait for more bytes than are buffered (the first Peek blocks in one Read).
		if _, err := r.Peek(r.Buffered() + 1); err != nil {
			return // EOF, an error, or a request larger than the buffer
		}
		buf, _ := r.Peek(r.Buffered())
		n, used := 0, 0
		for {
			i := bytes.Index(buf[used:], headEnd)
			if i < 0 {
				break
			}
			used += i + len(headEnd)
			n++
		}
		if n == 0 {
			continue
		}
		r.Discard(used)
		resp := *response.Load()
		out = out[:0]
		for ; n > 0; n-- {
			out = append(out, resp...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port (0: any; the chosen one is printed)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: the Go default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	response.Store(buildResponse(time.Now()))
	go keepDate()
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_rawhttp:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ln.Close()
}
