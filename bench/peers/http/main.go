// Command go_http_core is the Go peer of mpg_http_bench (bench/http_bench.cpp): the cost per
// request of Go's net/http server path (read and parse a request, run the handler, write the
// response) with the kernel taken out, as mpg's ServerSession benchmark takes it out.
//
// The server runs unmodified on a listener that hands it one in-memory connection: every Read
// returns the same input (one wrk plaintext request, or 16 pipelined), every Write is counted
// and dropped, and after the last read the connection says EOF and the server closes it. So
// the figure is net/http's parsing, routing, header handling and serialization plus the
// goroutine and bufio machinery a Go server always runs, at GOMAXPROCS=1.
//
// Output: one JSON object per case, {"name":..., "value":..., "unit":...}, with the case names
// mpg_http_bench uses: http/plaintext_1, http/plaintext_16 (ns/req) and their allocs/req.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// wrkRequest is the request wrk sends in the TechEmpower plaintext test.
const wrkRequest = "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/plain,text/html;q=0.9," +
	"application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n"

// memConn is a net.Conn whose reads repeat one input `reads` times, then EOF.
type memConn struct {
	input   []byte
	reads   int
	pos     int
	written int64
	once    sync.Once
	done    chan struct{}
}

func (c *memConn) Read(b []byte) (int, error) {
	if c.pos == len(c.input) {
		if c.reads == 0 {
			return 0, io.EOF
		}
		c.reads--
		c.pos = 0
	}
	n := copy(b, c.input[c.pos:])
	c.pos += n
	return n, nil
}

func (c *memConn) Write(b []byte) (int, error)        { c.written += int64(len(b)); return len(b), nil }
func (c *memConn) Close() error                       { c.once.Do(func() { close(c.done) }); return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// oneConnListener accepts its one connection, then blocks until closed.
type oneConnListener struct {
	conn   net.Conn
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if c := l.conn; c != nil {
		l.conn = nil
		return c, nil
	}
	<-l.closed
	return nil, errors.New("listener closed")
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }

// serve runs a fresh server over `reads` reads of `pipelined` requests; returns the wall time,
// the mallocs and the bytes written.
func serve(handler http.Handler, pipelined, reads int) (time.Duration, uint64, int64) {
	conn := &memConn{input: []byte(strings.Repeat(wrkRequest, pipelined)), reads: reads - 1, done: make(chan struct{})}
	ln := &oneConnListener{conn: conn, closed: make(chan struct{})}
	srv := &http.Server{Handler: handler}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	go srv.Serve(ln)
	<-conn.done
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	close(ln.closed)
	return elapsed, after.Mallocs - before.Mallocs, conn.written
}

type result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func main() {
	seconds := flag.Float64("seconds", 0.5, "target duration of each timed run")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	mux := http.NewServeMux()
	hello := []byte("Hello, World!")
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	enc := json.NewEncoder(os.Stdout)
	for _, pipelined := range []int{1, 16} {
		name := "http/plaintext_1"
		if pipelined == 16 {
			name = "http/plaintext_16"
		}
		// Calibrate (and warm up): grow the read count until a run takes 50 ms.
		reads := 1000
		for {
			d, _, _ := serve(mux, pipelined, reads)
			if d >= 50*time.Millisecond {
				reads = int(float64(reads) * (*seconds) / d.Seconds())
				break
			}
			reads *= 4
		}
		d, mallocs, written := serve(mux, pipelined, reads)
		requests := float64(reads * pipelined)
		enc.Encode(result{name, float64(d.Nanoseconds()) / requests, "ns/req"})
		enc.Encode(result{name + "_allocs", float64(mallocs) / requests, "allocs/req"})
		enc.Encode(result{name + "_out_bytes", float64(written) / requests, "bytes/req"})
	}
}
