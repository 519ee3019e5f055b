// Command go_micro is the Go peer of mpg's micro-benchmarks.
//
// Each case exercises one piece of the Go runtime's M:P:G machinery
// (goroutine creation, Gosched, channel hand-off, sync.Mutex, parked
// goroutine footprint, a spawn-heavy tree) and prints exactly one JSON
// object per line on stdout:
//
//	{"name":"<case>","value":<float>,"unit":"ns/op"|"bytes/goroutine"|"ms"}
//
// The mpg C++ benchmarks use the same case names, so tools/bench.py can put
// the two runtimes side by side. Every case sets runtime.GOMAXPROCS itself.
//
// How a case is timed:
//   - Loop cases (yield, channels, mutex) run a calibration pass that grows the
//     iteration count until a pass takes >= 50 ms (which also warms up the
//     runtime), then one timed pass sized to take about 0.5 s; the value is
//     that pass's wall time divided by the number of operations.
//   - Batch cases (spawn_wait_1e6, skynet_1e6) run one untimed warm-up round,
//     then timed rounds until at least 0.3 s has elapsed, and report the mean
//     per round (per goroutine for spawn, milliseconds for skynet).
//   - rss_parked_1e5 always runs in a fresh child process (this binary
//     re-executed), because goroutines and stacks freed by earlier cases stay
//     cached in the runtime and would hide the cost of new ones.
//
// The driver (tools/bench.py) repeats whole runs of this program; -cases
// selects a comma-separated subset (default: all, in the order listed below).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is one output line.
type result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// benchCase binds a case name to the function that measures it.
type benchCase struct {
	name string
	run  func() result
}

var cases = []benchCase{
	{"spawn_wait_1e6", spawnWait},
	{"yield_pingpong_p1", yieldPingPong},
	{"chan_unbuf_pingpong_p1", func() result { return chanUnbufPingPong(1) }},
	{"chan_unbuf_pingpong_p2", func() result { return chanUnbufPingPong(2) }},
	{"chan_unbuf_pingpong_p1_timer", chanUnbufPingPongTimer},
	{"chan_buf1024_p2", chanBuf1024},
	{"mutex_4_p2", mutex4},
	{"rss_parked_1e5", rssParkedIsolated},
	{"skynet_1e6", skynet},
}

// childFlag marks a re-executed child that must run the case in-process.
var childFlag = flag.Bool("child", false, "internal: run the selected case in this process")

func main() {
	list := flag.String("cases", "", "comma-separated cases to run (default: all)")
	flag.Parse()

	selected, err := selectCases(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_micro:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, c := range selected {
		if err := enc.Encode(c.run()); err != nil {
			fmt.Fprintln(os.Stderr, "go_micro:", err)
			os.Exit(1)
		}
	}
}

// selectCases resolves the -cases flag against the case table.
func selectCases(list string) ([]benchCase, error) {
	if strings.TrimSpace(list) == "" {
		return cases, nil
	}
	var out []benchCase
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, c := range cases {
			if c.name == name {
				out = append(out, c)
				found = true
				break
			}
		}
		if !found {
			names := make([]string, len(cases))
			for i, c := range cases {
				names[i] = c.name
			}
			return nil, fmt.Errorf("unknown case %q (known: %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// fail reports a self-check failure and exits non-zero.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go_micro: "+format+"\n", args...)
	os.Exit(1)
}

const (
	calibrateMin = 50 * time.Millisecond
	loopTarget   = 500 * time.Millisecond
	batchMin     = 300 * time.Millisecond
)

// timeLoop measures a loop case. pass(n) runs n iterations and returns the
// elapsed wall time; opsPerIter says how many reported operations one
// iteration stands for. It returns nanoseconds per operation.
func timeLoop(opsPerIter int, pass func(n int) time.Duration) float64 {
	n := 1000
	d := pass(n)
	for d < calibrateMin {
		n *= 4
		d = pass(n)
	}
	n = int(float64(n) * float64(loopTarget) / float64(d))
	if n < 1 {
		n = 1
	}
	runtime.GC()
	d = pass(n)
	return float64(d.Nanoseconds()) / float64(n*opsPerIter)
}

// timeBatch measures a batch case: one warm-up round, then rounds until
// batchMin has elapsed. It returns the mean wall time of a timed round.
func timeBatch(round func()) time.Duration {
	round()
	var total time.Duration
	rounds := 0
	for total < batchMin {
		runtime.GC()
		start := time.Now()
		round()
		total += time.Since(start)
		rounds++
	}
	return total / time.Duration(rounds)
}

// spawnWait: create 1e6 goroutines that only call wg.Done, then wg.Wait.
// Value: nanoseconds per goroutine, GOMAXPROCS = all CPUs.
func spawnWait() result {
	const n = 1_000_000
	runtime.GOMAXPROCS(runtime.NumCPU())
	d := timeBatch(func() {
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go wg.Done()
		}
		wg.Wait()
	})
	return result{"spawn_wait_1e6", float64(d.Nanoseconds()) / n, "ns/op"}
}

// yieldPingPong: two goroutines on one P, each calling runtime.Gosched n
// times, so every Gosched hands the P to the other one.
// Value: nanoseconds per Gosched call (wall time / 2n).
func yieldPingPong() result {
	runtime.GOMAXPROCS(1)
	ns := timeLoop(2, func(n int) time.Duration {
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		ready.Add(2)
		done.Add(2)
		for g := 0; g < 2; g++ {
			go func() {
				defer done.Done()
				ready.Done()
				<-start
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
			}()
		}
		ready.Wait()
		t0 := time.Now()
		close(start)
		done.Wait()
		return time.Since(t0)
	})
	return result{"yield_pingpong_p1", ns, "ns/op"}
}

// chanUnbufPingPong: an int bounces between two goroutines over two
// unbuffered channels (ping, pong). Value: nanoseconds per round trip.
func chanUnbufPingPong(procs int) result {
	runtime.GOMAXPROCS(procs)
	ns := timeLoop(1, func(n int) time.Duration {
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
			close(pong)
		}()
		t0 := time.Now()
		v := 0
		for i := 0; i < n; i++ {
			ping <- v
			v = <-pong
		}
		d := time.Since(t0)
		close(ping)
		<-pong // wait for the echo goroutine to finish
		if v != n {
			fail("chan_unbuf_pingpong: got %d, want %d", v, n)
		}
		return d
	})
	return result{"chan_unbuf_pingpong_p" + strconv.Itoa(procs), ns, "ns/op"}
}

// chanUnbufPingPongTimer: chanUnbufPingPong(1) with a timer pending an hour
// away, as a server with a deadline on every connection always has one.
func chanUnbufPingPongTimer() result {
	far := time.NewTimer(time.Hour)
	r := chanUnbufPingPong(1)
	far.Stop()
	r.Name = "chan_unbuf_pingpong_p1_timer"
	return r
}

// chanBuf1024: one producer sends n ints into a channel of capacity 1024,
// one consumer receives them. Value: nanoseconds per message.
func chanBuf1024() result {
	runtime.GOMAXPROCS(2)
	ns := timeLoop(1, func(n int) time.Duration {
		ch := make(chan int, 1024)
		done := make(chan int)
		t0 := time.Now()
		go func() {
			sum := 0
			for v := range ch {
				sum += v
			}
			done <- sum
		}()
		for i := 0; i < n; i++ {
			ch <- 1
		}
		close(ch)
		sum := <-done
		d := time.Since(t0)
		if sum != n {
			fail("chan_buf1024_p2: received %d messages, want %d", sum, n)
		}
		return d
	})
	return result{"chan_buf1024_p2", ns, "ns/op"}
}

// mutex4: four goroutines on two Ps each take and release one sync.Mutex n
// times, incrementing a shared counter inside the critical section.
// Value: nanoseconds per lock/unlock pair (wall time / 4n).
func mutex4() result {
	const workers = 4
	runtime.GOMAXPROCS(2)
	ns := timeLoop(workers, func(n int) time.Duration {
		var mu sync.Mutex
		var wg sync.WaitGroup
		counter := 0
		wg.Add(workers)
		t0 := time.Now()
		for w := 0; w < workers; w++ {
			go func() {
				defer wg.Done()
				for i := 0; i < n; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		if counter != workers*n {
			fail("mutex_4_p2: counter %d, want %d", counter, workers*n)
		}
		return d
	})
	return result{"mutex_4_p2", ns, "ns/op"}
}

// rssParkedIsolated runs rss_parked_1e5 in a fresh copy of this program
// (unless we already are that copy) and relays its result.
func rssParkedIsolated() result {
	if *childFlag {
		return rssParked()
	}
	exe, err := os.Executable()
	if err != nil {
		fail("rss_parked_1e5: %v", err)
	}
	cmd := exec.Command(exe, "-child", "-cases=rss_parked_1e5")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fail("rss_parked_1e5: child failed: %v", err)
	}
	var r result
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &r) != nil {
		fail("rss_parked_1e5: bad child output %q", out)
	}
	return r
}

// rssParked: resident memory added by 1e5 goroutines blocked on one shared
// unbuffered channel. debug.FreeOSMemory (a forced GC that also returns free
// pages to the OS) runs before both RSS readings, so the delta counts only
// memory the parked goroutines keep alive. Value: bytes per goroutine.
func rssParked() result {
	const n = 100_000
	runtime.GOMAXPROCS(runtime.NumCPU())
	debug.FreeOSMemory()
	before := residentBytes()

	release := make(chan struct{})
	var started, exited sync.WaitGroup
	started.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			exited.Done()
		}()
	}
	started.Wait()
	debug.FreeOSMemory()
	after := residentBytes()

	close(release)
	exited.Wait()
	return result{"rss_parked_1e5", float64(after-before) / n, "bytes/goroutine"}
}

// residentBytes returns the resident set size from /proc/self/statm.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("read statm: %v", err)
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		fail("unexpected statm %q", data)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		fail("parse statm: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

// skynet: the classic skynet benchmark. Every goroutine with size > 1 spawns
// ten children covering a tenth of its range each and sums their answers
// from an unbuffered channel; the 1e6 leaves send their own number, so the
// root receives 0+1+...+999999. Value: milliseconds per whole run.
func skynet() result {
	const size = 1_000_000
	const want = size * (size - 1) / 2
	runtime.GOMAXPROCS(2)
	d := timeBatch(func() {
		out := make(chan int)
		go skynetNode(out, 0, size, 10)
		if got := <-out; got != want {
			fail("skynet_1e6: sum %d, want %d", got, want)
		}
	})
	return result{"skynet_1e6", float64(d.Nanoseconds()) / 1e6, "ms"}
}

func skynetNode(out chan<- int, num, size, div int) {
	if size == 1 {
		out <- num
		return
	}
	children := make(chan int)
	step := size / div
	for i := 0; i < div; i++ {
		go skynetNode(children, num+i*step, step, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-children
	}
	out <- sum
}
