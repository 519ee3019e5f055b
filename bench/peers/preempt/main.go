// go_preempt: the Go side of mpg's preemption benchmarks (bench/preempt_bench.cpp is the C++
// side; tools/bench_preempt.py runs both and prints the table). One JSON object per line.
//
//	ticker_lateness: GOMAXPROCS hogs spin with no calls for -seconds while a goroutine reads a
//	                 1 ms ticker; lateness of each tick against its schedule: p50, p99, max (us).
//	cpu_bound:       4 goroutines compute a fixed floating-point load at GOMAXPROCS=2; ms.
//	syscall_getpid:  ns per syscall.Syscall(SYS_GETPID) (entersyscall/exitsyscall + the call).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func emit(name string, v map[string]float64) {
	v2 := map[string]interface{}{"name": name}
	for k, x := range v {
		v2[k] = x
	}
	b, _ := json.Marshal(v2)
	fmt.Println(string(b))
}

//go:noinline
func spin(stop *int32) {
	for atomic.LoadInt32(stop) == 0 {
	}
}

func tickerLateness(seconds float64) {
	runtime.GOMAXPROCS(runtime.NumCPU())
	var stop int32
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() { spin(&stop); wg.Done() }()
	}
	period := time.Millisecond
	t := time.NewTicker(period)
	start := time.Now()
	var late []float64
	for k := 1; time.Since(start).Seconds() < seconds; k++ {
		<-t.C
		due := start.Add(time.Duration(k) * period)
		l := time.Since(due)
		if l < 0 {
			l = 0
		}
		late = append(late, float64(l.Microseconds()))
		// Ticks dropped while we were late: re-align k to the schedule, as Go's ticker does.
		k = int(time.Since(start) / period)
	}
	t.Stop()
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	sort.Float64s(late)
	q := func(p float64) float64 { return late[int(p*float64(len(late)-1))] }
	emit("ticker_lateness", map[string]float64{"p50_us": q(0.5), "p99_us": q(0.99), "max_us": late[len(late)-1], "ticks": float64(len(late))})
}

//go:noinline
func compute(seed int, iters int) float64 {
	x, y, z := 1.0+float64(seed)*1e-3, 0.5, 0.25
	for i := 0; i < iters; i++ {
		x = math.FMA(x, 1.0000001, y*1e-9)
		y = y*0.9999999 + z*1e-7
		z = z + x*1e-12
	}
	return x + y + z
}

func cpuBound() {
	runtime.GOMAXPROCS(2)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) { compute(i, 50_000_000); wg.Done() }(i)
	}
	wg.Wait()
	emit("cpu_bound", map[string]float64{"ms": float64(time.Since(start).Microseconds()) / 1000})
}

func syscallCost() {
	runtime.GOMAXPROCS(1)
	n := 2_000_000
	start := time.Now()
	for i := 0; i < n; i++ {
		syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	}
	emit("syscall_getpid", map[string]float64{"ns": float64(time.Since(start).Nanoseconds()) / float64(n)})
}

func main() {
	seconds := flag.Float64("seconds", 1.0, "ticker run time")
	flag.Parse()
	tickerLateness(*seconds)
	cpuBound()
	syscallCost()
	os.Exit(0)
}
