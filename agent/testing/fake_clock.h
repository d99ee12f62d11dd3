#ifndef FCVM_AGENT_TESTING_FAKE_CLOCK_H_
#define FCVM_AGENT_TESTING_FAKE_CLOCK_H_

#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fcvm::agent::testing {

// Time that moves only when a test moves it (or when code under test
// "sleeps" on it), so token lifetimes and backoff are tested without real
// sleeps. Thread-safe: a server thread and the test read it together.
class FakeClock {
 public:
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration by) {
    absl::MutexLock lock(&mu_);
    now_ += by;
  }
  // A sleep on this clock: time moves on at once, and the sleep is
  // recorded.
  void Sleep(absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    now_ += duration;
    sleeps_.push_back(duration);
  }
  std::vector<absl::Duration> sleeps() const {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

  std::function<absl::Time()> NowFunction() {
    return [this] { return Now(); };
  }
  std::function<void(absl::Duration)> SleepFunction() {
    return [this](absl::Duration duration) { Sleep(duration); };
  }

 private:
  mutable absl::Mutex mu_;
  // Far from the epoch, so "zero" never looks like a valid time.
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1800000000);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fcvm::agent::testing

#endif  // FCVM_AGENT_TESTING_FAKE_CLOCK_H_
