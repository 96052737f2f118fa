// Cooperative fibers for the GPU emulator. See Fiber.h.
#include "emu/Fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define ATTN_EMU_ASAN 1
#endif

namespace attn::emu {

namespace {

thread_local Fiber* running = nullptr;

#if defined(ATTN_EMU_ASAN)
// AddressSanitizer must be told about every stack switch (else it takes the fiber stacks for
// a corrupted main stack). The scheduler's stack bounds, learnt on the first switch.
thread_local const void* schedulerBottom = nullptr;
thread_local size_t schedulerSize = 0;
#endif

}  // namespace

#if defined(__x86_64__)
// attn_emu_switch(save, load): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores the stack pointer in *save, switches to the stack `load` and
// restores the same from it. attn_emu_fiber_start is where a new fiber's first switch returns
// to: it calls r13(r12), i.e. Fiber::entry(fiber), which never returns.
extern "C" void attn_emu_switch(void** save, void* load);
extern "C" void attn_emu_fiber_start();
asm(R"(
  .text
  .globl attn_emu_switch
  .hidden attn_emu_switch
  .type attn_emu_switch, @function
attn_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size attn_emu_switch, .-attn_emu_switch

  .globl attn_emu_fiber_start
  .hidden attn_emu_fiber_start
  .type attn_emu_fiber_start, @function
attn_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size attn_emu_fiber_start, .-attn_emu_fiber_start
)");
#endif

Fiber::Fiber(size_t stackBytes) {
  pageBytes_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t stack = (stackBytes + pageBytes_ - 1) / pageBytes_ * pageBytes_;
  mappingBytes_ = stack + pageBytes_;
  void* m = ::mmap(nullptr, mappingBytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  mapping_ = static_cast<unsigned char*>(m);
  ::mprotect(mapping_, pageBytes_, PROT_NONE);  // the guard page: an overflow faults
#if !defined(__x86_64__)
  contexts_ = new ucontext_t[2];
#endif
}

Fiber::~Fiber() {
  ::munmap(mapping_, mappingBytes_);
#if !defined(__x86_64__)
  delete[] static_cast<ucontext_t*>(contexts_);
#endif
}

bool Fiber::inGuard(const void* address) const {
  const auto* a = static_cast<const unsigned char*>(address);
  return a >= mapping_ && a < mapping_ + pageBytes_;
}

Fiber* Fiber::current() { return running; }

void Fiber::entry(void* raw) {
  auto* self = static_cast<Fiber*>(raw);
#if defined(ATTN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &schedulerBottom, &schedulerSize);
#endif
  self->body_(self->arg_);
  self->finished_ = true;
#if defined(ATTN_EMU_ASAN)
  __sanitizer_start_switch_fiber(nullptr, schedulerBottom, schedulerSize);  // this stack is done
#endif
#if defined(__x86_64__)
  void* unused;
  attn_emu_switch(&unused, self->returnTo_);
#else
  auto* c = static_cast<ucontext_t*>(self->contexts_);
  setcontext(&c[1]);
#endif
  std::abort();  // a finished fiber is never resumed
}

void Fiber::start(Body body, void* arg) {
  body_ = body;
  arg_ = arg;
  finished_ = false;
  unsigned char* top = mapping_ + mappingBytes_;
#if defined(__x86_64__)
  // The frame attn_emu_switch pops: [mxcsr, fpcw][r15][r14][r13][r12][rbx][rbp][return address],
  // so that the return lands in attn_emu_fiber_start with a 16-byte aligned stack.
  auto* sp = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(top) & ~uintptr_t{15}) - 16);
  *--sp = reinterpret_cast<uint64_t>(&attn_emu_fiber_start);
  *--sp = 0;                                               // rbp
  *--sp = 0;                                               // rbx
  *--sp = reinterpret_cast<uint64_t>(this);                // r12: the argument
  *--sp = reinterpret_cast<uint64_t>(&Fiber::entry);       // r13: the function
  *--sp = 0;                                               // r14
  *--sp = 0;                                               // r15
  *--sp = uint64_t{0x037f} << 32 | uint64_t{0x1f80};       // x87 control word, MXCSR (defaults)
  context_ = sp;
#else
  auto* c = static_cast<ucontext_t*>(contexts_);
  getcontext(&c[0]);
  c[0].uc_stack.ss_sp = mapping_ + pageBytes_;
  c[0].uc_stack.ss_size = mappingBytes_ - pageBytes_;
  c[0].uc_link = nullptr;
  makecontext(&c[0], reinterpret_cast<void (*)()>(&Fiber::entry), 1, this);
#endif
}

void Fiber::resume() {
  if (finished_ || running) throw std::logic_error("emu: resume of a finished fiber, or from inside a fiber");
  running = this;
#if defined(ATTN_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, mapping_ + pageBytes_, mappingBytes_ - pageBytes_);
#endif
#if defined(__x86_64__)
  attn_emu_switch(&returnTo_, context_);
#else
  auto* c = static_cast<ucontext_t*>(contexts_);
  swapcontext(&c[1], &c[0]);
#endif
#if defined(ATTN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  running = nullptr;
}

void Fiber::yield() {
  Fiber* self = running;
  if (!self) throw std::logic_error("emu: yield outside a fiber");
#if defined(ATTN_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, schedulerBottom, schedulerSize);
#endif
#if defined(__x86_64__)
  attn_emu_switch(&self->context_, self->returnTo_);
#else
  auto* c = static_cast<ucontext_t*>(self->contexts_);
  swapcontext(&c[0], &c[1]);
#endif
#if defined(ATTN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, &schedulerBottom, &schedulerSize);
#endif
}

}  // namespace attn::emu
