// mpg_fiber_bench: Boost.Fiber and raw Boost.Context peers of mpg's micro-benchmarks.
//
// These give the "what does a plain user-space context switch cost on this
// machine" reference points next to mpg and Go. Everything runs on the
// calling thread (Boost.Fiber's default round-robin scheduler, no work
// sharing), so the fiber cases correspond to mpg's/Go's *_p1 cases:
//
//   fiber/yield_pingpong_p1       two fibers alternating boost::this_fiber::yield;
//                                 value = ns per yield.
//   fiber/chan_unbuf_pingpong_p1  an int bouncing over two
//                                 boost::fibers::unbuffered_channel<int64_t>;
//                                 value = ns per round trip.
//   raw/context_switch            jump_fcontext between the benchmark and one
//                                 context made with make_fcontext;
//                                 value = ns per one-way switch (round trip / 2,
//                                 also given as the "round_trip_ns" counter).
//   raw/mpg_context_switch        the same with mpg's own switch (x86-64, unless
//                                 built with MPG_BOOST_CONTEXT).
//   fiber/spawn_join_1e5          launch 1e5 empty fibers (default stack
//                                 allocator), then join them all;
//                                 value = ns per fiber.
//   fiber/spawn_join_1e5_pooled   the same with a reused pooled_fixedsize_stack.
//
// Reporting convention (shared with mpg's bench/micro_bench.cpp and read by
// tools/bench.py): benchmarks are named "<runtime>/<case>"; each one sets the
// user counter "ns_per_op" to the wall-clock nanoseconds per reported
// operation, which the driver prefers. Without that counter the driver falls
// back to 1e9 / items_per_second (batch benchmarks call SetItemsProcessed with
// the number of operations) and then to real_time per iteration. All
// benchmarks use real (wall) time.
#include <benchmark/benchmark.h>

#include <boost/context/detail/fcontext.hpp>
#include <boost/fiber/all.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Publishes the per-operation wall time as the "ns_per_op" counter.
void report_ns_per_op(benchmark::State& state, Clock::duration elapsed, double ops) {
    const double ns = std::chrono::duration<double, std::nano>(elapsed).count();
    state.counters["ns_per_op"] = ops > 0 ? ns / ops : 0.0;
}

// Two fibers take turns: the benchmark's own (main) fiber yields once per
// iteration, and a partner fiber yields until told to stop. Each iteration
// is therefore two yields, i.e. two fiber switches through the scheduler.
void BM_YieldPingPong(benchmark::State& state) {
    bool stop = false;
    boost::fibers::fiber partner([&stop] {
        while (!stop) {
            boost::this_fiber::yield();
        }
    });
    const auto start = Clock::now();
    for (auto _ : state) {
        boost::this_fiber::yield();
    }
    const auto elapsed = Clock::now() - start;
    stop = true;
    partner.join();
    report_ns_per_op(state, elapsed, 2.0 * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_YieldPingPong)->Name("fiber/yield_pingpong_p1")->UseRealTime();

// An echo fiber receives on `ping` and sends the value back on `pong`. One
// iteration is one full round trip through two unbuffered channels.
void BM_ChanUnbufPingPong(benchmark::State& state) {
    boost::fibers::unbuffered_channel<std::int64_t> ping, pong;
    boost::fibers::fiber echo([&ping, &pong] {
        std::int64_t v = 0;
        while (ping.pop(v) == boost::fibers::channel_op_status::success) {
            pong.push(v + 1);
        }
    });
    std::int64_t v = 0;
    const auto start = Clock::now();
    for (auto _ : state) {
        ping.push(v);
        pong.pop(v);
    }
    const auto elapsed = Clock::now() - start;
    ping.close();
    echo.join();
    if (v != static_cast<std::int64_t>(state.iterations())) {
        state.SkipWithError("echo fiber lost messages");
    }
    report_ns_per_op(state, elapsed, static_cast<double>(state.iterations()));
}
BENCHMARK(BM_ChanUnbufPingPong)->Name("fiber/chan_unbuf_pingpong_p1")->UseRealTime();

// Raw Boost.Context: no scheduler, no queues, just the register save/restore
// of jump_fcontext. The context bounces straight back to whoever jumped to it.
namespace ctx = boost::context::detail;

[[noreturn]] void bounce(ctx::transfer_t t) {
    for (;;) {
        t = ctx::jump_fcontext(t.fctx, nullptr);
    }
}

void BM_RawContextSwitch(benchmark::State& state) {
    constexpr std::size_t kStackSize = 64 * 1024;
    // operator new[] alignment is enough: make_fcontext aligns the top itself.
    auto stack = std::make_unique<unsigned char[]>(kStackSize);
    ctx::fcontext_t other = ctx::make_fcontext(stack.get() + kStackSize, kStackSize, bounce);
    // First jump enters bounce(); it comes right back with its live context.
    other = ctx::jump_fcontext(other, nullptr).fctx;

    const auto start = Clock::now();
    for (auto _ : state) {
        other = ctx::jump_fcontext(other, nullptr).fctx;  // there and back
    }
    const auto elapsed = Clock::now() - start;
    // The suspended context owns nothing, so simply dropping its stack is fine.
    report_ns_per_op(state, elapsed, 2.0 * static_cast<double>(state.iterations()));
    state.counters["round_trip_ns"] =
        std::chrono::duration<double, std::nano>(elapsed).count() /
        static_cast<double>(state.iterations());
}
BENCHMARK(BM_RawContextSwitch)->Name("raw/context_switch")->UseRealTime();

#if MPG_OWN_SWITCH_BENCH && !(defined(__CET__) && (__CET__ & 2))
// mpg's own switch (src/runtime/context.cpp), the same round trip: what replacing
// jump_fcontext saved (docs/runtime.md, "The context switch").
struct MpgTransfer {
    void* fctx;
    void* data;
};
extern "C" MpgTransfer mpg_jump_context(void* to, void* data);
extern "C" void* mpg_make_context(void* top, std::size_t size, void (*fn)(MpgTransfer));

[[noreturn]] void mpg_bounce(MpgTransfer t) {
    for (;;) {
        t = mpg_jump_context(t.fctx, nullptr);
    }
}

void BM_MpgContextSwitch(benchmark::State& state) {
    constexpr std::size_t kStackSize = 64 * 1024;
    auto stack = std::make_unique<unsigned char[]>(kStackSize);
    void* other = mpg_make_context(stack.get() + kStackSize, kStackSize, mpg_bounce);
    other = mpg_jump_context(other, nullptr).fctx;
    const auto start = Clock::now();
    for (auto _ : state) {
        other = mpg_jump_context(other, nullptr).fctx;
    }
    const auto elapsed = Clock::now() - start;
    report_ns_per_op(state, elapsed, 2.0 * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_MpgContextSwitch)->Name("raw/mpg_context_switch")->UseRealTime();
#endif

// Launches 1e5 empty fibers with `alloc` (launch::post, so none runs until
// the main fiber blocks), then joins them in order; the first join lets all
// of them run. Returns how many fibers actually ran.
template <typename StackAllocator>
std::size_t spawn_join_round(std::vector<boost::fibers::fiber>& fibers, StackAllocator& alloc) {
    constexpr std::size_t kFibers = 100'000;
    std::size_t ran = 0;
    for (std::size_t i = 0; i < kFibers; ++i) {
        fibers.emplace_back(std::allocator_arg, alloc, [&ran] { ++ran; });
    }
    for (auto& f : fibers) {
        f.join();
    }
    fibers.clear();
    return ran;
}

// One iteration = one spawn_join_round. An untimed warm-up round runs first:
// the very first round is dominated by the kernel faulting in ~1e5 fresh
// stacks, which says little about Boost.Fiber itself. The iteration count is
// fixed so Google Benchmark calls the function once (one warm-up only).
template <typename StackAllocator>
void spawn_join(benchmark::State& state, StackAllocator& alloc) {
    constexpr std::size_t kFibers = 100'000;
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(kFibers);
    spawn_join_round(fibers, alloc);

    std::size_t ran = 0;
    Clock::duration elapsed{};
    for (auto _ : state) {
        const auto start = Clock::now();
        ran += spawn_join_round(fibers, alloc);
        elapsed += Clock::now() - start;
    }
    const double ops = static_cast<double>(kFibers) * static_cast<double>(state.iterations());
    if (static_cast<double>(ran) != ops) {
        state.SkipWithError("not every fiber ran");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(ops));
    report_ns_per_op(state, elapsed, ops);
}

// Boost's default stack allocator (fixedsize_stack: one 128 KiB malloc per
// fiber), i.e. what a plain `boost::fibers::fiber f(fn)` gets.
void BM_SpawnJoinDefault(benchmark::State& state) {
    boost::fibers::fixedsize_stack alloc;
    spawn_join(state, alloc);
}
BENCHMARK(BM_SpawnJoinDefault)
    ->Name("fiber/spawn_join_1e5")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

// Same with a pooled_fixedsize_stack that outlives the rounds, so stacks are
// recycled instead of returned to malloc: closer to how mpg and Go cache
// stacks of finished goroutines.
void BM_SpawnJoinPooled(benchmark::State& state) {
    boost::fibers::pooled_fixedsize_stack alloc;
    spawn_join(state, alloc);
}
BENCHMARK(BM_SpawnJoinPooled)
    ->Name("fiber/spawn_join_1e5_pooled")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
