// Command go_echo is the Go peer of mpg's TCP echo benchmark (bench/echo): one goroutine per
// connection, each reading into its own buffer and writing back what it read, the idiomatic
// Go server that the netpoller makes cheap.
//
//	go_echo [-host 127.0.0.1] [-port 0] [-procs 0] [-pool]
//
// -pool: borrow a buffer from a sync.Pool only while a connection has data, as mpg's
// echo_goroutine --pool does with Conn::wait_readable. net.Conn has no wait for readability
// (golang/go#15735), so this goes through syscall.RawConn: its Read calls back once the
// descriptor is readable, and the callback reads into a pooled buffer.
//
// Prints "listening <port>" once it accepts; exits on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
)

// bufBytes: each connection's read buffer; 64 KiB drains a socket buffer in one read, as the
// reactor's per-loop scratch area does.
const bufBytes = 64 * 1024

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufBytes)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var bufs = sync.Pool{New: func() any { b := make([]byte, bufBytes); return &b }}

func servePooled(c net.Conn) {
	defer c.Close()
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for {
		var buf *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf = bufs.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *buf)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				bufs.Put(buf)
				buf = nil
				return false // wait until readable, then call again
			}
			return true
		})
		if err == nil && rerr == nil && n > 0 {
			_, err = c.Write((*buf)[:n])
		}
		if buf != nil {
			bufs.Put(buf)
		}
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port (0: any; the chosen one is printed)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: the Go default)")
	pool := flag.Bool("pool", false, "borrow a read buffer only while a connection has data")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if *pool {
				go servePooled(c)
			} else {
				go serve(c)
			}
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ln.Close()
}
