// preempt.cpp: stopping a goroutine that has run for a whole time slice.
//
// Cooperative: sysmon sets g->preempt; every runtime entry that may continue without switching
// (channel operations that complete, spawns, mpg::preempt_point) checks it and yields to the
// global queue (Go's gopreempt_m). Free when the flag is clear: one load.
//
// Asynchronous (Go 1.14's design): a G that makes no runtime calls never checks the flag, so
// sysmon also sends SIGURG to its M (tgkill; a pending flag per M stops signal storms). The
// handler preempts only at a safe point:
//  - the signal interrupted the M's current G on that G's own stack, with room below the
//    128-byte red zone for the saved state and a scheduler call;
//  - the G holds no runtime lock (the thread's lock count is zero) and no mpg::NoPreempt;
//  - the interrupted PC is the application's own code: not mpg's runtime (all of libmpg's
//    code is in the section mpg_text, renamed at build time, so its bounds are the linker's
//    __start_mpg_text/__stop_mpg_text), and not libc, libstdc++, libgcc, libm, the dynamic
//    loader, the sanitizer runtimes or Boost.Context (their executable segments are listed
//    once, at start, with dl_iterate_phdr), and not a PLT entry, through which the runtime
//    calls those libraries (the PLT sections are read from the section headers at start);
//  - no switch is in progress (m->after is set from a switch-out to its after-action).
// There it rewrites the signal context so that, when the handler returns, the thread "calls"
// mpg_async_preempt_trampoline: it pushes every general register and the flags, XSAVEs the
// x87/SSE/AVX state (MXCSR and the x87 control word included), calls async_preempt_park (which
// yields like a cooperative preemption), then restores everything and returns to the
// interrupted instruction, popping the red zone it skipped. Anywhere else the handler does
// nothing but leave the flag set; sysmon tries again next slice.
//
// The rule for what a preempted G may hold: an asynchronously preempted G resumes on the same
// M, so an OS mutex it holds or a thread_local address in a register stays valid. It waits in
// its M's resume slot, not a run queue where a thief could take it: the M runs its P's timers
// and local Gs first (the point of preempting), then, every other time, a global G or one
// stolen from a busier P (so the Ps stay even: find_runnable), then resumes it before
// spinning or sleeping. Where the M itself must wait (its P was taken during another G's
// blocking call) the preempted G is wired to it as by lock_os_thread, until its next
// cooperative switch; a goroutine that locks the thread first lets the preempted G run.
// Across a cooperative switch (any mpg call that can block) a goroutine may move threads, as
// in every goroutine runtime. (Wiring on every preemption was measured first: each one then
// hands the P to another thread and back, which cost 15-20% on a CPU-bound benchmark.)
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cpuid.h>
#include <cstring>
#include <vector>

#include "mpg/runtime.hpp"
#include "runtime/config_internal.hpp"
#include "runtime/sched.hpp"

extern "C" {
// Bounds of libmpg's code (see cmake/mpg_text.sh); weak so that a build without the renaming
// links and simply treats no code as runtime code.
extern const char __start_mpg_text[] __attribute__((weak));
extern const char __stop_mpg_text[] __attribute__((weak));
void mpg_async_preempt_trampoline();
void mpg_async_preempt_park();
std::uint64_t mpg_xsave_size = 0;  // bytes of the XSAVE area (0: use FXSAVE)
}

namespace mpg::detail {

namespace {

// kAsyncRoomBytes: stack an injected call needs below the interrupted SP: the red zone, the
// registers, the XSAVE area (up to ~2.7 KiB with AVX-512) and the scheduler's frames.
constexpr std::size_t kAsyncRoomBytes = 16 * 1024;
constexpr int kMaxRanges = 256;

struct Range {
  std::uintptr_t lo, hi;
};
Range excluded[kMaxRanges];
int nexcluded = 0;
bool excluded_overflow = false;  // the table filled up: no PC is trusted (async preemption off)

void exclude(std::uintptr_t lo, std::uintptr_t hi) {
  if (nexcluded < kMaxRanges) excluded[nexcluded++] = {lo, hi};
  else excluded_overflow = true;
}
bool signals_installed = false;
struct sigaction old_urg;

bool name_excluded(const char* name) {
  static const char* const kExcluded[] = {"libc.so",  "libstdc++", "libgcc_s", "libm.so",   "ld-linux", "libasan",
                                          "libtsan",  "libubsan",  "liblsan",  "libboost_", "linux-vdso", "libpthread"};
  if (!name || !*name) return false;  // the main executable
  for (const char* x : kExcluded)
    if (std::strstr(name, x)) return true;
  return false;
}

// add_plt_ranges: excludes the PLT entries of an object whose code is otherwise the
// application's (the main executable, or a library not listed above). libmpg's calls into libc,
// libstdc++ and the sanitizer runtimes go through them, from the middle of runtime code: in the
// ASan build, __sanitizer_finish_switch_fiber@plt runs between a stack switch and its
// completion, and a preemption there started a second switch ("starting fiber switch while in
// fiber switch", once in CI); in any build, the clock_gettime@plt of a timer check inside a
// switch-out looked like a safe point. The entries are found through the section headers (.plt,
// .plt.sec, .plt.got, .iplt), read once from the file.
void add_plt_ranges(const char* path, std::uintptr_t base) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ElfW(Ehdr) eh;
  if (::pread(fd, &eh, sizeof eh, 0) == ssize_t(sizeof eh) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_shentsize == sizeof(ElfW(Shdr)) && eh.e_shnum > 0 && eh.e_shnum < 65280 && eh.e_shstrndx < eh.e_shnum) {
    std::vector<ElfW(Shdr)> sh(eh.e_shnum);
    std::size_t bytes = sh.size() * sizeof(ElfW(Shdr));
    if (::pread(fd, sh.data(), bytes, off_t(eh.e_shoff)) == ssize_t(bytes) && sh[eh.e_shstrndx].sh_size < (1u << 20)) {
      const ElfW(Shdr)& strs = sh[eh.e_shstrndx];
      std::vector<char> names(strs.sh_size + 1, '\0');
      if (::pread(fd, names.data(), strs.sh_size, off_t(strs.sh_offset)) == ssize_t(strs.sh_size)) {
        for (const ElfW(Shdr)& s : sh) {
          if (s.sh_name >= strs.sh_size || !(s.sh_flags & SHF_EXECINSTR) || s.sh_size == 0) continue;
          const char* n = names.data() + s.sh_name;
          bool plt = std::strcmp(n, ".plt") == 0 || std::strncmp(n, ".plt.", 5) == 0 || std::strcmp(n, ".iplt") == 0;
          if (plt) exclude(base + s.sh_addr, base + s.sh_addr + s.sh_size);
        }
      }
    }
  }
  ::close(fd);
}

// collect_libraries: the first pass, every runtime library's code whole (these matter most, so
// they take the table first).
int collect_libraries(dl_phdr_info* info, std::size_t, void*) {
  if (!name_excluded(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
      std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      exclude(lo, lo + ph.p_memsz);
    }
  }
  return 0;
}

// collect_plts: the second pass, the PLT entries of the main program (the first object listed,
// read through /proc/self/exe) and of every other library loaded from an absolute path.
int collect_plts(dl_phdr_info* info, std::size_t, void* index) {
  int i = (*static_cast<int*>(index))++;
  if (name_excluded(info->dlpi_name)) return 0;
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  if (i == 0) add_plt_ranges("/proc/self/exe", info->dlpi_addr);
  else if (name[0] == '/') add_plt_ranges(name, info->dlpi_addr);
  return 0;
}

}  // namespace

bool preempt_pc_is_safe(std::uintptr_t pc) {
  if (excluded_overflow) return false;
  if (__start_mpg_text && pc >= std::uintptr_t(__start_mpg_text) && pc < std::uintptr_t(__stop_mpg_text)) return false;
  for (int i = 0; i < nexcluded; i++)
    if (pc >= excluded[i].lo && pc < excluded[i].hi) return false;
  return true;
}

namespace {

void on_preempt_signal(int, siginfo_t*, void* ucv) {
  int saved_errno = errno;
  M* m = current_m();
  if (m) m->signal_pending.store(false, std::memory_order_relaxed);
  G* g = m ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (!g || !g->preempt.load(std::memory_order_relaxed) || g->status.load(std::memory_order_relaxed) != GStatus::Running) {
    errno = saved_errno;
    return;  // stale: the G already switched
  }
#if defined(__x86_64__)
  auto* uc = static_cast<ucontext_t*>(ucv);
  std::uintptr_t pc = std::uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
  std::uintptr_t sp = std::uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
  std::uintptr_t lo = std::uintptr_t(g->stack.lo) + kPageSize + kAsyncRoomBytes;
  std::uintptr_t hi = std::uintptr_t(g->closure_area());
  // m->after is set from the start of a switch-out until its after-action begins (that code is
  // runtime code): never a safe point, whatever the PC (a preemption would overwrite it).
  if (tls_runtime_locks != 0 || g->nopreempt != 0 || m->after != M::After::None || sp < lo || sp >= hi ||
      !preempt_pc_is_safe(pc)) {
    sched->preempt_refused.fetch_add(1, std::memory_order_relaxed);
    errno = saved_errno;
    return;
  }
  // "Call" the trampoline: skip the red zone, push the interrupted PC as a return address.
  sp -= 128 + 8;
  *reinterpret_cast<std::uintptr_t*>(sp) = pc;
  uc->uc_mcontext.gregs[REG_RSP] = greg_t(sp);
  uc->uc_mcontext.gregs[REG_RIP] = greg_t(reinterpret_cast<std::uintptr_t>(&mpg_async_preempt_trampoline));
#else
  (void)ucv;
  sched->preempt_refused.fetch_add(1, std::memory_order_relaxed);
#endif
  errno = saved_errno;
}

}  // namespace

void preempt_init() {
  nexcluded = 0;
  excluded_overflow = false;
  dl_iterate_phdr(collect_libraries, nullptr);
  int index = 0;
  dl_iterate_phdr(collect_plts, &index);
#if defined(__x86_64__)
  unsigned a, b, c, d;
  mpg_xsave_size = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {  // OSXSAVE: XSAVE usable
    __cpuid_count(0xD, 0, a, b, c, d);
    mpg_xsave_size = b;  // size for the features enabled in XCR0
  }
#endif
  if (!signals_installed) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sa.sa_sigaction = on_preempt_signal;
    sigaction(SIGURG, &sa, &old_urg);
    signals_installed = true;
  }
}

void preempt_signal(M* m) {
  if (m->tid == 0 || m->signal_pending.exchange(true, std::memory_order_acq_rel)) return;
  syscall(SYS_tgkill, getpid(), m->tid, SIGURG);
}

void preempt_now(G* g) {
  M* m = current_m();
  m->p->preempt_coop.fetch_add(1, std::memory_order_relaxed);
  g->preempt.store(false, std::memory_order_relaxed);
  m->slice_spent = true;
  yield_global();
}

void nopreempt_enter() {
  if (G* g = current_g()) g->nopreempt++;
}
void nopreempt_exit() {
  if (G* g = current_g()) g->nopreempt--;
}

}  // namespace mpg::detail

void mpg::preempt_point() {
  using namespace mpg::detail;
  G* g = current_g();
  if (g && g->preempt.load(std::memory_order_relaxed)) preempt_now(g);
}

using namespace mpg::detail;  // NOLINT

// mpg_async_preempt_park: called by the trampoline on the preempted G's stack, with every
// register saved. Yields; the G waits in its M's resume slot, so it continues on this thread.
extern "C" void mpg_async_preempt_park() {
  M* m = current_m();
  G* g = m->curg.load(std::memory_order_relaxed);
  sched->preempt_async.fetch_add(1, std::memory_order_relaxed);
  g->preempt.store(false, std::memory_order_relaxed);
  async_yield();
}

#if defined(__x86_64__)
// The trampoline. On entry: [rsp] = the interrupted PC, and 128 bytes above it the red zone of
// the interrupted frame. Every register is as the interrupted code left it. Once the FP state
// is saved it is reset to the defaults (fninit: x87 control word 0x37f, empty register stack;
// MXCSR 0x1f80): the scheduler and the goroutines that run on this thread until the preempted
// one resumes must not inherit its rounding mode, exception mask or x87 stack, since the stack
// switch does not carry them (context.hpp). The restore gives the G its own back.
asm(R"(
  .text
  .globl mpg_async_preempt_trampoline
  .type mpg_async_preempt_trampoline, @function
mpg_async_preempt_trampoline:
  pushfq
  pushq %rax
  pushq %rbx
  pushq %rcx
  pushq %rdx
  pushq %rsi
  pushq %rdi
  pushq %rbp
  pushq %r8
  pushq %r9
  pushq %r10
  pushq %r11
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, %rbx
  movq mpg_xsave_size(%rip), %rax
  testq %rax, %rax
  jz 1f
  subq %rax, %rsp
  andq $-64, %rsp
  xorl %eax, %eax
  movq %rax, 512(%rsp)
  movq %rax, 520(%rsp)
  movq %rax, 528(%rsp)
  movq %rax, 536(%rsp)
  movq %rax, 544(%rsp)
  movq %rax, 552(%rsp)
  movq %rax, 560(%rsp)
  movq %rax, 568(%rsp)
  movl $-1, %eax
  movl $-1, %edx
  xsave64 (%rsp)
  fninit
  ldmxcsr mpg_default_mxcsr(%rip)
  call mpg_async_preempt_park
  movl $-1, %eax
  movl $-1, %edx
  xrstor64 (%rsp)
  jmp 2f
1:
  subq $512, %rsp
  andq $-64, %rsp
  fxsave64 (%rsp)
  fninit
  ldmxcsr mpg_default_mxcsr(%rip)
  call mpg_async_preempt_park
  fxrstor64 (%rsp)
2:
  movq %rbx, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %r11
  popq %r10
  popq %r9
  popq %r8
  popq %rbp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %rcx
  popq %rbx
  popq %rax
  popfq
  ret $128
  .size mpg_async_preempt_trampoline, .-mpg_async_preempt_trampoline
  .section .rodata
  .align 4
mpg_default_mxcsr:
  .long 0x1f80
  .text
)");
#endif
