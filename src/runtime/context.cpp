// context.cpp: mpg's own stack switch on x86-64 (see context.hpp for the contract and why).
//
// A saved context is a stack pointer. Below it, in pop order: r12, r13, r14, r15, rbx, rbp and
// the address to resume at; these are all the registers the System V ABI makes a callee keep
// (no vector register is callee-saved there). jump pushes the six onto the leaving stack,
// stores the stack pointer as the leaver's context (returned in rax, the Transfer's first word),
// loads the target's, pops its six and returns into it with the data in rdx (the second word).
// A context with its low bit set is fresh (fresh_context): the stack's top plus one, nothing
// written there yet. jump then sets the stack pointer to that top and calls mpg_fresh_entry
// with {the leaver's context, data} (rdi, rsi), the stack aligned as a call requires; the
// entry never returns.
#include "runtime/context.hpp"

#if MPG_OWN_SWITCH
// make: a made context is a frame that jump pops like any other. Its r12 holds fn and its
// return address is mpg_context_start, which passes the Transfer jump left in rax:rdx to fn as
// fn's two argument registers. The frame is placed so that fn is entered with the stack
// aligned as a call leaves it (rsp + 8 a multiple of 16). fn never returns (a goroutine ends by
// switching away for good); if it did, ud2 traps. The CFI marks the start of the stack for
// unwinders (debuggers, perf), which would otherwise walk into the frame's zeroed words.
asm(R"(
  .text
  .globl mpg_jump_context
  .hidden mpg_jump_context
  .type mpg_jump_context, @function
  .align 16
mpg_jump_context:
  .cfi_startproc
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %rbp, 0
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %rbx, 0
  pushq %r15
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r15, 0
  pushq %r14
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r14, 0
  pushq %r13
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r13, 0
  pushq %r12
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r12, 0
  movq %rsp, %rax
  testq $1, %rdi
  jnz mpg_fresh_start
  # From here the frame is the target's, of the same shape: the CFA rules still hold.
  movq %rdi, %rsp
  popq %r12
  .cfi_adjust_cfa_offset -8
  .cfi_restore %r12
  popq %r13
  .cfi_adjust_cfa_offset -8
  .cfi_restore %r13
  popq %r14
  .cfi_adjust_cfa_offset -8
  .cfi_restore %r14
  popq %r15
  .cfi_adjust_cfa_offset -8
  .cfi_restore %r15
  popq %rbx
  .cfi_adjust_cfa_offset -8
  .cfi_restore %rbx
  popq %rbp
  .cfi_adjust_cfa_offset -8
  .cfi_restore %rbp
  movq %rsi, %rdx
  ret
  .cfi_endproc
  .size mpg_jump_context, .-mpg_jump_context

  .globl mpg_make_context
  .hidden mpg_make_context
  .type mpg_make_context, @function
  .align 16
mpg_make_context:
  .cfi_startproc
  movq %rdi, %rax
  andq $-16, %rax
  leaq -56(%rax), %rax
  movq %rdx, (%rax)
  xorl %ecx, %ecx
  movq %rcx, 8(%rax)
  movq %rcx, 16(%rax)
  movq %rcx, 24(%rax)
  movq %rcx, 32(%rax)
  movq %rcx, 40(%rax)
  leaq mpg_context_start(%rip), %rcx
  movq %rcx, 48(%rax)
  ret
  .cfi_endproc
  .size mpg_make_context, .-mpg_make_context

  .type mpg_fresh_start, @function
  .align 16
mpg_fresh_start:
  .cfi_startproc
  .cfi_undefined rip
  leaq -1(%rdi), %rsp
  andq $-16, %rsp
  movq %rax, %rdi
  xorl %ebp, %ebp
  callq mpg_fresh_entry
  ud2
  .cfi_endproc
  .size mpg_fresh_start, .-mpg_fresh_start

  .type mpg_context_start, @function
  .align 16
mpg_context_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %rax, %rdi
  movq %rdx, %rsi
  callq *%r12
  ud2
  .cfi_endproc
  .size mpg_context_start, .-mpg_context_start
)");
#endif
