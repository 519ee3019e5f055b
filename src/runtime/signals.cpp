// signals.cpp: the runtime's signal handlers. SIGSEGV (on an alternate stack per M) turns a hit
// on a goroutine's guard page into "goroutine N: stack overflow"; SIGQUIT prints the goroutine
// dump and exits 2, as Go does. Faults that are not ours go to the handler installed before
// (ASan's, or the default one).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "runtime/sched.hpp"

namespace mpg::detail {

void dump_to_fd(int fd);

namespace {

// kSigStackBytes: the alternate signal stack of each M.
constexpr std::size_t kSigStackBytes = 64 * 1024;
struct sigaction old_segv, old_bus, old_quit;
bool installed = false;

void say(const char* s) { write_all(2, s, std::strlen(s)); }
void say_u(std::uint64_t v) {
  char t[24];
  int k = 0;
  do t[k++] = char('0' + v % 10), v /= 10;
  while (v);
  char o[24];
  int n = 0;
  while (k) o[n++] = t[--k];
  write_all(2, o, std::size_t(n));
}

void chain(const struct sigaction& old, int sig, siginfo_t* info, void* uc) {
  if (old.sa_flags & SA_SIGINFO) {
    if (old.sa_sigaction) {
      old.sa_sigaction(sig, info, uc);
      return;
    }
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and kills us.
  signal(sig, SIG_DFL);
}

void on_segv(int sig, siginfo_t* info, void* uc) {
  M* m = current_m();
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (g) {
    char* addr = static_cast<char*>(info->si_addr);
    // A fault in the guard page, or just below the stack's lowest page.
    if (addr >= g->stack.lo - kPageSize && addr < g->stack.lo + 2 * kPageSize) {
      say("goroutine ");
      say_u(g->id);
      say(": stack overflow (stack ");
      say_u(g->stack.size / 1024);
      say(" KiB)\n\n");
      dump_to_fd(2);
      signal(SIGABRT, SIG_DFL);
      abort();
    }
  }
  chain(sig == SIGBUS ? old_bus : old_segv, sig, info, uc);
}

void on_quit(int, siginfo_t*, void*) {
  say("SIGQUIT: quit\n\n");
  dump_to_fd(2);
  _exit(2);
}

}  // namespace

void install_signal_handlers() {
  if (installed) return;
  installed = true;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sa.sa_sigaction = on_segv;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  sa.sa_sigaction = on_quit;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGQUIT, &sa, &old_quit);
}

void restore_signal_handlers() {
  if (!installed) return;
  installed = false;
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
}

void m_signal_stack_init(M* m) {
  void* p = mmap(nullptr, kSigStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_sp = p;
  ss.ss_size = kSigStackBytes;
  // Keep a sanitizer's own alternate stack if it installed one on this thread.
  stack_t old;
  if (sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
    munmap(p, kSigStackBytes);
    return;
  }
  if (sigaltstack(&ss, nullptr) == 0) m->sigaltstack = p;
  else munmap(p, kSigStackBytes);
}

void m_signal_stack_free(M* m) {
  if (!m->sigaltstack) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(m->sigaltstack, kSigStackBytes);
  m->sigaltstack = nullptr;
}

}  // namespace mpg::detail
