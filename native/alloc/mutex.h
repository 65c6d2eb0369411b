// Mutex: the Arena's lock. Uncontended, lock() is one compare-and-swap and
// unlock() one exchange, inline, with no call: std::mutex on glibc costs
// about 4 ns more per alloc+free pair (two calls into libc per method, each
// with its mutex-kind dispatch and owner bookkeeping), a fifth of the pair's
// 20 ns budget (docs/design.md, "The arena's lock"). Contended, a waiter
// sleeps on a condition variable, as it would on std::mutex: it neither
// spins nor busy-waits.
//
//   state_   0 free, 1 locked, 2 locked and a waiter may be asleep
//
// This is the second mutex of Drepper's "Futexes Are Tricky" (2011) with a
// condition variable, guarded by park_, in place of the futex. A waiter holds
// park_ from the exchange that finds the lock taken until wait() releases it,
// and an unlock that saw 2 notifies under park_, so the notify cannot fall
// between the waiter's exchange and its sleep and be lost. Not fair, like
// std::mutex: a thread arriving as the lock is released may take it first.
//
// Threads: any. BasicLockable, so std::lock_guard takes it.
#ifndef MMAP_POOL_ALLOC_MUTEX_H_
#define MMAP_POOL_ALLOC_MUTEX_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace mmap_pool {
namespace alloc {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    uint32_t expected = kFree;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      LockContended();
    }
  }

  void unlock() {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) WakeOne();
  }

 private:
  static constexpr uint32_t kFree = 0, kLocked = 1, kContended = 2;

  void LockContended() {
    std::unique_lock<std::mutex> park(park_);
    // Taken with kContended, not kLocked: another waiter may still be asleep,
    // and this thread's unlock must wake it.
    while (state_.exchange(kContended, std::memory_order_acquire) != kFree) wake_.wait(park);
  }

  void WakeOne() {
    std::lock_guard<std::mutex> park(park_);
    wake_.notify_one();
  }

  std::atomic<uint32_t> state_{kFree};
  std::mutex park_;
  std::condition_variable wake_;
};

}  // namespace alloc
}  // namespace mmap_pool

#endif  // MMAP_POOL_ALLOC_MUTEX_H_
