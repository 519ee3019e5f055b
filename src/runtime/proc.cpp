// proc.cpp: the life of Gs and Ms: spawn, the G pools, goroutine entry and exit, starting and
// ending a run, thread locking, and the small public calls (goid, sleep, stats).
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "mpg/errors.hpp"
#include "mpg/runtime.hpp"
#include "runtime/config_internal.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/sched.hpp"

namespace mpg::detail {

namespace {
// kPoolBatch: a P caches up to 512 free Gs (P::gfree), spills half to the global pool when full
// and refills kPoolBatch at a time from it. Go caches 64 and moves 32 either way; mpg caches 512
// while the P runs, so that a P that both runs and spawns Gs (a spawner that moves between Ps,
// a burst) reuses the Gs it ran itself rather than those another P spilled, whose lines sit in
// that core's cache (spawn + WaitGroup of 1e6: docs/runtime.md). A P that goes idle keeps
// kPoolKeepIdle (Go's 64) and gives the rest to the global pool, whose stacks sysmon's
// scavenger trims as before (gfree_trim), so idle memory does not grow.
constexpr std::uint32_t kPoolBatch = 32;
constexpr std::uint32_t kPoolKeepIdle = 64;
// kGPoolResident: pooled Gs of the global list that keep their stacks' top kKeepBytes resident;
// beyond them, sysmon gives back all but each G's top page (gfree_scavenge). A burst of 10,000
// goroutines otherwise leaves ~160 MiB of RSS behind it for ever.
constexpr std::size_t kGPoolResident = 256;
// kGoidBatch: goroutine ids are handed to Ps in batches so spawns do not share a counter.
constexpr std::uint64_t kGoidBatch = 16;
thread_local std::uint64_t goid_next = 0, goid_end = 0;
thread_local std::uint64_t goid_run = 0;  // which run the thread's batch belongs to
std::uint64_t run_counter = 0;
}  // namespace

const char* wait_reason_string(WaitReason r) {
  switch (r) {
    case WaitReason::None: return "";
    case WaitReason::ChanReceive: return "chan receive";
    case WaitReason::ChanSend: return "chan send";
    case WaitReason::ChanReceiveNil: return "chan receive (nil chan)";
    case WaitReason::Select: return "select";
    case WaitReason::SelectNoCases: return "select (no cases)";
    case WaitReason::Sleep: return "sleep";
    case WaitReason::Mutex: return "sync.Mutex.Lock";
    case WaitReason::Semacquire: return "semacquire";
    case WaitReason::WaitGroup: return "sync.WaitGroup.Wait";
    case WaitReason::CondWait: return "sync.Cond.Wait";
    case WaitReason::IOWait: return "IO wait";
    case WaitReason::Syscall: return "syscall";
    case WaitReason::LockedThread: return "locked to thread";
  }
  return "?";
}

void G::bad_status(GStatus from, GStatus to) const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "mpg: goroutine %llu: bad status transition %d -> %d (status is %d)",
                static_cast<unsigned long long>(id), int(from), int(to), int(status.load(std::memory_order_relaxed)));
  fatal(buf, false);
}

char* G::closure_area() const {
  return reinterpret_cast<char*>(const_cast<G*>(this)) - kInlineClosureBytes;
}

void fiber_of_thread(Fiber& f) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    f.stack_lo = addr;
    f.stack_size = size;
  }
#if MPG_TSAN
  f.tsan = __tsan_get_current_fiber();
#endif
}

// ---------------------------------------------------------------------------------------------
// G allocation and pools.

static void g_timer_fire(TimerNode* node, std::uint64_t seq) {
  // Sleep and select timeouts both claim the G through select_done with the arm's seq as token,
  // so a stale firing from an earlier arm can never wake a later wait.
  G* g = static_cast<G*>(node->arg);
  std::uint64_t open = seq << 1;
  if (g->select_done.compare_exchange_strong(open, open | 1, std::memory_order_acq_rel)) {
    g->param = nullptr;
    ready(g);
  }
}

static G* g_carve(std::size_t size) {
  StackSlot slot = stack_carve(size);
  void* top = slot.hi() - sizeof(G);
  G* g = ::new (top) G();
  g->stack = slot;
  g->default_stack = size == sched->stack_size;
  g->fiber.stack_lo = slot.lo + kPageSize;
  g->fiber.stack_size = std::size_t(g->closure_area() - (slot.lo + kPageSize));
  g->lowwater = reinterpret_cast<std::uintptr_t>(slot.hi());
  fiber_create(g->fiber);
  g->timer.fire = &g_timer_fire;
  g->timer.arg = g;
  std::lock_guard<Lock> lk(sched->allg_lock);
  g->alllink = sched->allg;
  __atomic_store_n(&sched->allg, g, __ATOMIC_RELEASE);
  return g;
}

static G* gfget(P* p, std::size_t size) {
  if (size == sched->stack_size) {
    if (p) {
      if (p->gfree.empty() && sched->ngfree.load(std::memory_order_relaxed) != 0) {
        std::lock_guard<Lock> lk(sched->gfree_lock);
        auto& v = sched->gfree;
        for (std::uint32_t i = 0; i < kPoolBatch && !v.empty(); i++) {
          p->gfree.push(v.back());
          v.pop_back();
        }
        sched->ngfree.store(std::uint32_t(v.size()), std::memory_order_relaxed);
      }
      if (G* g = p->gfree.pop()) return g;
    } else {
      std::lock_guard<Lock> lk(sched->gfree_lock);
      if (!sched->gfree.empty()) {
        G* g = sched->gfree.back();
        sched->gfree.pop_back();
        sched->ngfree.store(std::uint32_t(sched->gfree.size()), std::memory_order_relaxed);
        return g;
      }
    }
  } else {
    std::lock_guard<Lock> lk(sched->gfree_lock);
    auto& v = sched->gfree_other;
    for (std::size_t i = 0; i < v.size(); i++) {
      if (v[i]->stack.size == size) {
        G* g = v[i];
        v[i] = v.back();
        v.pop_back();
        return g;
      }
    }
  }
  return g_carve(size);
}

// gfree_spill: moves p's cached Gs beyond `keep` to the global pool (p owned by the caller).
static void gfree_spill(P* p, std::uint32_t keep) {
  std::lock_guard<Lock> lk(sched->gfree_lock);
  while (p->gfree.n > keep) sched->gfree.push_back(p->gfree.pop());
  sched->ngfree.store(std::uint32_t(sched->gfree.size()), std::memory_order_relaxed);
  sched->gfree_dirty.store(true, std::memory_order_relaxed);
}

void gfput(P* p, G* g) {
  // Give back what a deep call touched, keeping the top kKeepBytes (the G and first frames).
  // Only the G's first two lines are read here, as in a spawn (g.hpp).
  char* keep = g->stack_hi() - kKeepBytes;
  if (g->lowwater < reinterpret_cast<std::uintptr_t>(keep)) stack_trim(g->stack, keep);
  g->lowwater = reinterpret_cast<std::uintptr_t>(g->stack_hi());
  g->id = 0;
  g->set_status(GStatus::Dead, GStatus::Idle);
  if (g->default_stack && p) {
    if (p->gfree.full()) gfree_spill(p, p->gfree.capacity() / 2);
    p->gfree.push(g);
    return;
  }
  std::lock_guard<Lock> lk(sched->gfree_lock);
  if (g->default_stack) {
    sched->gfree.push_back(g);
    sched->ngfree.store(std::uint32_t(sched->gfree.size()), std::memory_order_relaxed);
    sched->gfree_dirty.store(true, std::memory_order_relaxed);
  } else {
    sched->gfree_other.push_back(g);
  }
}

void gfree_trim(P* p) {
  if (p->gfree.n > kPoolKeepIdle) gfree_spill(p, kPoolKeepIdle);
}

void gfree_scavenge() {
  if (!sched->gfree_dirty.exchange(false, std::memory_order_relaxed)) return;
  // The coldest Gs are at the front (gfget and gfput work at the back). Take them out of the
  // pool while their stacks are given back, so no spawn can start on a stack being released.
  std::vector<G*> cold;
  {
    std::lock_guard<Lock> lk(sched->gfree_lock);
    auto& v = sched->gfree;
    if (v.size() <= kGPoolResident) return;
    std::size_t n = v.size() - kGPoolResident;
    cold.assign(v.begin(), v.begin() + std::ptrdiff_t(n));
    v.erase(v.begin(), v.begin() + std::ptrdiff_t(n));
    sched->ngfree.store(std::uint32_t(v.size()), std::memory_order_relaxed);
  }
  for (G* g : cold) {
    if (g->stack_released) continue;
    stack_trim(g->stack, g->closure_area());  // all but the page that holds the G and its closure
    g->stack_released = true;
  }
  std::lock_guard<Lock> lk(sched->gfree_lock);
  auto& v = sched->gfree;
  v.insert(v.begin(), cold.begin(), cold.end());
  sched->ngfree.store(std::uint32_t(v.size()), std::memory_order_relaxed);
}

static std::uint64_t new_goid() {
  if (goid_run != run_counter || goid_next == goid_end) {
    goid_next = sched->goid_gen.fetch_add(kGoidBatch, std::memory_order_relaxed) + 1;
    goid_end = goid_next + kGoidBatch;
    goid_run = run_counter;
  }
  return goid_next++;
}

}  // namespace mpg::detail

// mpg_fresh_entry (g_entry in the comments): the first frame of every goroutine (context.hpp's
// fresh_context starts here).
extern "C" [[gnu::used, gnu::visibility("hidden")]] void mpg_fresh_entry(mpg::detail::Transfer t) {
  using namespace mpg::detail;
  G* g = current_g();
  entered_context(g->fiber);
  g_landed(t);
  g->started = true;
  try {
    g->invoke(g->closure);
  } catch (const std::exception& e) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "panic in goroutine %llu: %s", static_cast<unsigned long long>(g->id), e.what());
    fatal(buf, true);
  } catch (...) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "panic in goroutine %llu: unknown exception", static_cast<unsigned long long>(g->id));
    fatal(buf, true);
  }
  g->destroy(g->closure);
  g->invoke = nullptr;
  goexit(current_m(), g);
}

namespace mpg::detail {

SpawnSlot spawn_begin(std::size_t stack_size) {
  if (!sched) throw RuntimeMisuse("mpg::go outside mpg::run");
  M* m = current_m();
  P* p = m ? m->p : nullptr;
  std::size_t size = stack_size ? stack_round(stack_size) : sched->stack_size;
  G* g = gfget(p, size);
  return {g, g->closure_area(), g->small_closure};
}

// spawn_init: everything a fresh G needs before it may run; Idle -> `to` (Runnable, or Waiting
// for a G that joins the netpoller's list of readied Gs).
static void spawn_init(G* g, const ClosureFns& fns, const std::source_location& where, G* parent, P* p,
                       GStatus to = GStatus::Runnable) {
  g->id = new_goid();
  g->stack_released = false;
  g->invoke = fns.invoke;
  g->destroy = fns.destroy;
  g->closure = fns.at;
  g->parent_id = parent ? parent->id : 0;
  g->created_at = where;
  g->started = false;
  g->preempt.store(false, std::memory_order_relaxed);  // a fresh G: nobody else reads it yet
  g->io_woken = false;
  // lowwater is already the stack's top: g_carve and gfput leave it so. A fresh context writes
  // nothing to the stack (context.hpp), so a spawn with a small closure writes the G's first
  // two cache lines and nothing else.
  g->ctx = fresh_context(g->closure_area(), g->fiber);
  g->set_status(GStatus::Idle, to);
  if (p) p->spawned.store(p->spawned.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  else sched->spawned_outside.fetch_add(1, std::memory_order_relaxed);
}

void spawn_commit(G* g, const ClosureFns& fns, const std::source_location& where) {
  M* m = current_m();
  P* p = m ? m->p : nullptr;
  G* parent = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  spawn_init(g, fns, where, parent, p);
  if (p) {
    // A spawner that fills its P's ring (a loop of go() calls) steps aside to the global queue
    // once the ring is full: this P (and thieves) then run the Gs it just made while they are
    // hot in cache and TLB, and nothing overflows. Without this the backlog grows to hundreds
    // of thousands of cold Gs, each on a page of its own, and a spawn costs 3-4x more (Cilk's
    // work-first rule; Go, whose Gs are dense, lets the queue overflow).
    bool full = p->runq.size() >= kLocalQueueSize - 1 && p->runnext.load(std::memory_order_relaxed) != nullptr;
    runqput(p, g, true);
    if (full && parent && !parent->lockedm) {
      wakep();
      yield_global();
      return;
    }
    // The exchange on runnext in runqput is the full barrier between publishing g and reading
    // the spinning count (a locked instruction on x86), as in ready_on: no fence of our own.
    wakep_unfenced();
  } else {
    sched->lock.lock();
    sched->runq.push_back(g);
    sched->runqsize.fetch_add(1, std::memory_order_relaxed);
    sched->lock.unlock();
    wakep();
  }
  if (parent && parent->preempt.load(std::memory_order_relaxed) && parent->status.load(std::memory_order_relaxed) == GStatus::Running)
    preempt_now(parent);
}

// spawn_init_here: spawn_init for a G that joins a list instead of a run queue (the caller's M,
// if any, gives the parent and the P whose spawn count it is).
static void spawn_init_here(G* g, const ClosureFns& fns, const std::source_location& where, GStatus to) {
  M* m = current_m();
  spawn_init(g, fns, where, m ? m->curg.load(std::memory_order_relaxed) : nullptr, m ? m->p : nullptr, to);
}

void spawn_prepare(G* g, const ClosureFns& fns, const std::source_location& where, G** head, G** tail) {
  spawn_init_here(g, fns, where, GStatus::Runnable);
  g->schedlink = nullptr;
  if (*tail) (*tail)->schedlink = g;
  else *head = g;
  *tail = g;
}

void spawn_polled(G* g, const ClosureFns& fns, const std::source_location& where, GList& out) {
  spawn_init_here(g, fns, where, GStatus::Waiting);
  out.push(g);
}

// spawn_inject: the batch onto the global queue (one lock per 64), then one wakep: a spinning M
// takes work and, finding more, wakes the next (Go's spinning chain). Starting an M per idle P
// at once, as inject_glist does for the netpoller's list, measured slower for the hybrid
// server's batches (docs/servers.md).
void spawn_inject(G* head) {
  G* batch[64];
  while (head) {
    std::uint32_t b = 0;
    while (head && b < 64) {
      batch[b++] = head;
      head = head->schedlink;
    }
    globrunqput_batch(batch, b);
  }
  wakep();
}

void destroy_g_closure(G* g) {
  if (g->invoke && !g->started && g->destroy) g->destroy(g->closure);
  g->invoke = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Ms.

static void mstart(M* m) {
  m->tid = int(syscall(SYS_gettid));
  m_cpu_clock_init(m);
  set_current_m(m);
  fiber_of_thread(m->g0fiber);
  m_signal_stack_init(m);
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = nullptr;
  }
  schedule_loop(m);
  m_signal_stack_free(m);
  set_current_m(nullptr);
}

void newm(P* p, bool spinning) {
  // Under the lock, so that the end of the run (which sets exiting under the lock, then joins
  // every thread in allm) never misses a thread or races with its handle being written.
  std::lock_guard<Lock> lk(sched->lock);
  if (sched->exiting.load(std::memory_order_relaxed)) return;
  if (int(sched->allm.size()) >= sched->max_threads) fatal("mpg: thread limit exceeded (Config::max_threads)", true);
  M* m = new M();
  m->id = int(sched->allm.size());
  m->rand.s = 0x9e3779b97f4a7c15ull * std::uint64_t(m->id + 1) ^ std::uint64_t(nanotime());
  m->spinning = spinning;
  m->nextp = p;
  sched->allm.push_back(m);
  m->thread = std::thread(mstart, m);
}

}  // namespace mpg::detail

namespace mpg {

using namespace detail;

int detail::run_main(const Config& cfg, int (*invoke)(void*), void* main_closure) {
  if (sched) throw RuntimeMisuse("mpg::run: the runtime is already running");
  sched = new Sched();
  run_counter++;
  sched->procs = cfg.procs > 0 ? cfg.procs : default_procs();
  sched->stack_size = stack_round(cfg.stack_size ? cfg.stack_size : kDefaultStackSize);
  sched->pin_procs = cfg.pin_procs;
  sched->max_threads = cfg.max_threads > 0 ? cfg.max_threads : 10000;
  sched->cpus = allowed_cpus();
  sched->time_slice = cfg.time_slice.count() > 0 ? cfg.time_slice.count() : 10'000'000;
  sched->async_preempt = cfg.async_preempt && debug_option("asyncpreemptoff") != 1;
  sched->debug_migrate = cfg.debug_migrate || debug_option("migrate") == 1;
  sched->contention_cap = cfg.contention_cap && debug_option("contentioncap") != 0;
  sched->spread_cap.store(sched->procs, std::memory_order_relaxed);
#if MPG_TSAN
  sched->async_preempt = false;  // TSan delivers signals late, at its own points: never a safe point
#endif
  sched->start_time = nanotime();
  cpu_set_t caller_cpus;
  CPU_ZERO(&caller_cpus);
  bool restore_cpus = cfg.pin_procs && sched_getaffinity(0, sizeof caller_cpus, &caller_cpus) == 0;
  for (int i = 0; i < sched->procs; i++) {
    P* p = new P();
    p->id = i;
    sched->allp.push_back(p);
  }
  M* m0 = new M();
  m0->id = 0;
  m0->rand.s = std::uint64_t(nanotime()) | 1;
  sched->allm.push_back(m0);
  m0->tid = int(syscall(SYS_gettid));
  m_cpu_clock_init(m0);
  set_current_m(m0);
  fiber_of_thread(m0->g0fiber);
  install_signal_handlers();
  preempt_init();
  m_signal_stack_init(m0);
  acquirep(m0, sched->allp[0]);
  sched->lock.lock();
  for (int i = sched->procs - 1; i >= 1; i--) {
    P* p = sched->allp[std::size_t(i)];
    p->status.store(PStatus::Idle, std::memory_order_release);
    p->link = sched->pidle;
    sched->pidle = p;
    sched->npidle.fetch_add(1);
  }
  sched->lock.unlock();

  int trace_ms = cfg.schedtrace_ms > 0 ? cfg.schedtrace_ms : debug_option("schedtrace");
  sysmon_start(trace_ms > 0 ? trace_ms : 0);

  struct MainFn {
    int (*invoke)(void*);
    void* closure;
    void operator()() { sched->exit_code = invoke(closure); }
  };
  go(MainFn{invoke, main_closure});
  schedule_loop(m0);

  // The main goroutine returned: every M leaves its loop; collect them.
  sysmon_stop();
  sched->lock.lock();
  std::vector<M*> ms = sched->allm;
  sched->lock.unlock();
  for (M* m : ms)
    if (m->thread.joinable()) m->thread.join();
  int code = sched->exit_code;
  if (restore_cpus) sched_setaffinity(0, sizeof caller_cpus, &caller_cpus);
  m_signal_stack_free(m0);
  restore_signal_handlers();
  for (G* g = sched->allg; g; g = g->alllink) {
    destroy_g_closure(g);
    fiber_destroy(g->fiber);
  }
  for (P* p : sched->allp) {
    std::lock_guard<Lock> lk(p->timers.lock);
    for (auto& e : p->timers.heap) e.node->unref();
    p->timers.heap.clear();
  }
  netpoll_shutdown();
  stack_release_all();
  for (P* p : sched->allp) delete p;
  for (M* m : sched->allm) delete m;
  set_current_m(nullptr);
  delete sched;
  sched = nullptr;
  return code;
}

std::uint64_t goid() {
  G* g = current_g();
  return g ? g->id : 0;
}

bool in_goroutine() { return current_g() != nullptr; }

int procs() { return sched ? sched->procs : 0; }

void sleep_until(std::chrono::steady_clock::time_point t) {
  auto d = t - std::chrono::steady_clock::now();
  sleep_for(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

void sleep_for(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  G* g = current_g();
  if (!g) throw RuntimeMisuse("mpg::sleep_for outside a goroutine");
  std::uint64_t seq = g->timer.next_seq();
  g->select_done.store(seq << 1, std::memory_order_relaxed);
  park_with_timer(WaitReason::Sleep, nullptr, nullptr, &g->timer, nanotime() + d.count());
}

void lock_os_thread() {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g) throw RuntimeMisuse("mpg::lock_os_thread outside a goroutine");
  // A G preempted on this thread waits to resume here: let it run before the thread is taken.
  while (g->lock_count == 0 && m->resume) {
    yield_global();
    m = current_m();
  }
  if (g->lock_count++ == 0) {
    g->lockedm = m;
    m->lockedg = g;
    g->async_wired = false;  // now wired by the user, until the matching unlock
  }
}

void unlock_os_thread() {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g || g->lock_count == 0) return;  // Go: unlocking an unlocked goroutine is a no-op
  if (--g->lock_count == 0) {
    g->lockedm = nullptr;
    m->lockedg = nullptr;
  }
}

Stats stats() {
  Stats s;
  if (!sched) return s;
  s.spawned = sched->spawned_outside.load(std::memory_order_relaxed);
  for (P* p : sched->allp) {
    s.spawned += p->spawned.load(std::memory_order_relaxed);
    s.switches += p->switches.load(std::memory_order_relaxed);
    s.steals += p->steals.load(std::memory_order_relaxed);
    s.stolen += p->stolen.load(std::memory_order_relaxed);
  }
  for (G* g = __atomic_load_n(&sched->allg, __ATOMIC_ACQUIRE); g; g = g->alllink) {
    switch (g->status.load(std::memory_order_relaxed)) {
      case GStatus::Runnable: s.runnable++; break;
      case GStatus::Running: s.running++; break;
      case GStatus::Waiting: s.waiting++; break;
      default: break;
    }
  }
  s.goroutines = s.runnable + s.running + s.waiting;
  for (P* p : sched->allp) {
    s.preempt_coop += p->preempt_coop.load(std::memory_order_relaxed);
    s.blocking_calls += p->blocking_calls.load(std::memory_order_relaxed);
  }
  s.preempt_async = sched->preempt_async.load(std::memory_order_relaxed);
  s.preempt_refused = sched->preempt_refused.load(std::memory_order_relaxed);
  s.retakes = sched->retakes.load(std::memory_order_relaxed);
  s.spread_cap = sched->spread_cap.load(std::memory_order_relaxed);
  s.contended_windows = sched->contended_windows.load(std::memory_order_relaxed);
  s.global_queue = sched->runqsize.load(std::memory_order_relaxed);
  s.parks = sched->nparks.load(std::memory_order_relaxed);
  s.procs = sched->procs;
  s.idle_procs = sched->npidle.load(std::memory_order_relaxed);
  s.spinning = sched->nmspinning.load(std::memory_order_relaxed);
  sched->lock.lock();
  s.threads = int(sched->allm.size());
  s.idle_threads = sched->nmidle;
  sched->lock.unlock();
  return s;
}

}  // namespace mpg
