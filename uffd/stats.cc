#include "uffd/stats.h"

#include "absl/strings/str_format.h"

namespace fcvm::uffd {
namespace {

std::string Bytes(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) {
    return absl::StrFormat("%.1f GiB", bytes / double(uint64_t{1} << 30));
  }
  if (bytes >= (1 << 20))
    return absl::StrFormat("%.1f MiB", bytes / double(1 << 20));
  return absl::StrFormat("%d KiB", bytes >> 10);
}

}  // namespace

void LatencyHistogram::Add(absl::Duration latency) {
  const int64_t ns = absl::ToInt64Nanoseconds(latency);
  int bucket = ns <= 1 ? 0 : 63 - __builtin_clzll(static_cast<uint64_t>(ns));
  if (bucket >= kBuckets) bucket = kBuckets - 1;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
}

uint64_t LatencyHistogram::count() const {
  uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  return total;
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  std::array<uint64_t, kBuckets> counts;
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    counts[i] = buckets_[i].load(std::memory_order_relaxed);
    total += counts[i];
  }
  if (total == 0) return absl::ZeroDuration();
  // The rank of the quantile, 1-based, rounded up.
  uint64_t rank = static_cast<uint64_t>(q * total);
  if (rank * 1.0 < q * total) ++rank;
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return absl::Nanoseconds(int64_t{2} << i);
  }
  return absl::InfiniteDuration();
}

std::string VmStats::ToString() const {
  auto get = [](const std::atomic<uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
  };
  return absl::StrFormat(
      "faults %d (%s, %d zero), removes %d (%s), prefetched %d pages (%s), "
      "faults in working set %d, outside %d, eexist %d, eagain %d, service "
      "p50 %s p99 %s",
      get(faults), Bytes(get(fault_bytes)), get(zero_faults), get(removes),
      Bytes(get(removed_bytes)), get(prefetched_pages),
      Bytes(get(prefetched_bytes)), get(faults_in_working_set),
      get(faults_outside_working_set), get(exists), get(retries),
      absl::FormatDuration(latency.Quantile(0.5)),
      absl::FormatDuration(latency.Quantile(0.99)));
}

}  // namespace fcvm::uffd
