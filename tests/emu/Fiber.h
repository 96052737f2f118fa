// Fiber.h: cooperative threads on one OS thread, for the GPU emulator (Emulator.h): each
// emulated GPU thread runs on a Fiber of its own and gives control back (yield) only where a
// GPU thread could wait for others (a barrier, a warp collective), so a whole CTA runs
// deterministically, one fiber at a time.
//
// On x86-64 the switch is a few instructions of our own (callee-saved registers, MXCSR and the
// x87 control word); elsewhere ucontext (which also saves the signal mask: correct, but a
// system call per switch). Stacks are mmap'ed with a guard page below them.
#pragma once

#include <cstddef>

namespace attn::emu {

class Fiber {
 public:
  using Body = void (*)(void* arg);

  /// A fiber with a stack of `stackBytes` (rounded up to pages), not started.
  explicit Fiber(size_t stackBytes);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  /// Prepares the fiber to run body(arg) from its start at the next resume(), abandoning
  /// whatever it was doing (a fiber that failed is restarted this way; its stack is reused).
  void start(Body body, void* arg);
  /// Runs the fiber from where it last yielded until it yields again or its body returns.
  /// Called from outside any fiber (the scheduler).
  void resume();
  /// From inside the running fiber: back to the resume() that ran it.
  static void yield();
  /// The fiber running now (nullptr in the scheduler).
  static Fiber* current();

  bool finished() const { return finished_; }
  /// Whether `address` lies in this fiber's stack guard page (a stack overflow).
  bool inGuard(const void* address) const;

 private:
  static void entry(void* self);

  unsigned char* mapping_ = nullptr;  // guard page + stack
  size_t mappingBytes_ = 0;
  size_t pageBytes_ = 0;
  Body body_ = nullptr;
  void* arg_ = nullptr;
  bool finished_ = true;
  void* context_ = nullptr;   // the fiber's saved state (x86-64: its stack pointer)
  void* returnTo_ = nullptr;  // the scheduler's saved state while the fiber runs
  void* contexts_ = nullptr;  // the ucontext fallback's two ucontext_t (fiber, scheduler)
};

}  // namespace attn::emu
