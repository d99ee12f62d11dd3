#ifndef FCVM_UFFD_STATS_H_
#define FCVM_UFFD_STATS_H_

// What the memory server did for one VM: counters the fault loop bumps
// (relaxed atomics: the loop's thread writes, a stats request reads from
// another) and a histogram of fault service times, printed on request and
// when the VM leaves.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace fcvm::uffd {

// Service times in power-of-two nanosecond buckets: bucket i holds times
// in [2^i, 2^(i+1)) ns; the last one everything from 2^31 ns (2.1 s) up.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32;

  void Add(absl::Duration latency);
  uint64_t count() const;
  // The upper bound of the bucket holding the q-quantile (0 < q <= 1): an
  // estimate within a factor of two, never below the true value. Zero when
  // empty.
  absl::Duration Quantile(double q) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

struct VmStats {
  std::atomic<uint64_t> faults{0};       // Resolved on demand.
  std::atomic<uint64_t> fault_bytes{0};  // Copied for them.
  std::atomic<uint64_t> zero_faults{0};  // Of those, zero pages (removed).
  std::atomic<uint64_t> removes{0};      // REMOVE events (balloon, DONTNEED).
  std::atomic<uint64_t> removed_bytes{0};
  std::atomic<uint64_t> exists{0};   // EEXIST: the page was there already.
  std::atomic<uint64_t> retries{0};  // EAGAIN: events drained, retried.
  std::atomic<uint64_t> prefetched_pages{0};
  std::atomic<uint64_t> prefetched_bytes{0};
  // With a working set: on-demand faults on pages it holds (the VM got
  // there before the prefetch did) and on pages it does not (the recording
  // did not predict them). A uffd server never learns whether a prefetched
  // page was used: once copied, the kernel does not ask again.
  std::atomic<uint64_t> faults_in_working_set{0};
  std::atomic<uint64_t> faults_outside_working_set{0};
  LatencyHistogram latency;

  // "faults 123 (0.5 MiB, 2 zero), removes 1 (4 KiB), prefetched 1000
  // pages (3.9 MiB), faults in working set 3, outside 120, eexist 0,
  // eagain 0, service p50 8.192us p99 65.536us".
  std::string ToString() const;
};

}  // namespace fcvm::uffd

#endif  // FCVM_UFFD_STATS_H_
