// `bazel run //bench:uffd`: the memory server against a minimal raw
// handler, on one machine in one run.
//
// 1. Per-fault latency, as the faulting thread sees it (a Firecracker-like
//    client touching each page of a 64 MiB region once, in order, from one
//    thread; the time of each first touch): our server (one VM) and a
//    minimal single-threaded raw handler written here (poll, read one
//    message, UFFDIO_COPY).
// 2. 32 VMs at once on our server (8 MiB each): p50/p99 of every fault.
// 3. Bulk copy throughput by batch size: raw UFFDIO_COPY of a whole region
//    in batches (4 KiB to 2 MiB), and our server's prefetch of a working
//    set covering the region with the same batch (handshake to the last
//    page resident).
// 4. memcpy bandwidth from the memory file's mapping, for scale.
//
//   bazel run -c opt //bench:uffd [-- --runs 5]
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "base/unix_socket.h"
#include "uffd/handshake.h"
#include "uffd/server.h"
#include "uffd/testing/fake_firecracker.h"
#include "uffd/userfaultfd.h"
#include "uffd/working_set.h"

ABSL_FLAG(int, runs, 5, "repetitions of each latency measurement");
ABSL_FLAG(int, vms, 32, "VMs at once for the concurrency measurement");
ABSL_FLAG(int, threads, 2, "the server's fault threads");

namespace fcvm::uffd {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kRegion = 64 << 20;
constexpr uint64_t kSmallRegion = 8 << 20;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "bench/uffd: %s\n", why.c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v) {
  if (!v.ok()) Die(std::string(v.status().message()));
  return std::move(*v);
}
void Check(const absl::Status& s) {
  if (!s.ok()) Die(std::string(s.message()));
}

struct Latencies {
  std::vector<int64_t> ns;
  int64_t Quantile(double q) {
    std::sort(ns.begin(), ns.end());
    return ns.empty() ? 0 : ns[std::min(ns.size() - 1, size_t(q * ns.size()))];
  }
};

// Touches every page once, in order, timing each first touch; with a
// `period`, one page per period (a VM that faults now and then rather than
// flat out).
void TouchAll(uint8_t* memory, uint64_t bytes, Latencies& out,
              int64_t period_ns = 0) {
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (uint64_t at = 0; at < bytes; at += kPage) {
    if (period_ns > 0) {
      next.tv_nsec += period_ns;
      while (next.tv_nsec >= 1000000000) {
        next.tv_nsec -= 1000000000;
        ++next.tv_sec;
      }
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
    }
    const int64_t start = NowNs();
    (void)*reinterpret_cast<volatile uint8_t*>(memory + at);
    out.ns.push_back(NowNs() - start);
  }
}

// A fresh Firecracker-like VM connected to `socket`, handshake sent.
testing::FakeFirecracker Connect(const std::string& socket, uint64_t bytes,
                                 UniqueFd* connection) {
  testing::FakeFirecracker fc =
      Check(testing::FakeFirecracker::Create(1, bytes));
  *connection = Check(fc.Connect(socket));
  Check(testing::FakeFirecracker::Send(connection->get(), fc.Handshake("1.12"),
                                       {fc.uffd()}));
  return fc;
}

// The minimal raw handler: accepts one VM, then poll + read one message +
// UFFDIO_COPY, single-threaded, until `stop`.
void RawHandler(int listener, const uint8_t* file, uint64_t file_size,
                std::atomic<bool>& stop) {
  UniqueFd connection(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  char buffer[65536];
  iovec iov = {buffer, sizeof(buffer)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t got = recvmsg(connection.get(), &message, 0);
  if (got <= 0) Die("raw handler: no handshake");
  UniqueFd uffd(*reinterpret_cast<int*>(CMSG_DATA(CMSG_FIRSTHDR(&message))));
  const MemoryRegion region =
      Check(ParseHandshake(absl::string_view(buffer, got), file_size))[0];
  pollfd fd = {uffd.get(), POLLIN, 0};
  while (!stop) {
    if (poll(&fd, 1, 100) <= 0) continue;
    uffd_msg m;
    if (read(uffd.get(), &m, sizeof(m)) != sizeof(m)) continue;
    if (m.event != UFFD_EVENT_PAGEFAULT) continue;
    const uint64_t address = m.arg.pagefault.address & ~(kPage - 1);
    (void)Copy(uffd.get(), address,
               file + region.offset + (address - region.base), kPage);
  }
}

std::string Us(int64_t ns) { return absl::StrFormat("%.1f us", ns / 1000.0); }

int Main() {
  const int runs = absl::GetFlag(FLAGS_runs);
  char dir_template[] = "/tmp/fcvm-bench-uffd.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  const std::string dir = dir_template;
  const std::string memory_path = dir + "/memory";
  {
    std::string bytes(kRegion, '\0');
    std::mt19937_64 random(1);
    for (size_t i = 0; i < bytes.size(); i += 8) {
      const uint64_t v = random();
      std::memcpy(&bytes[i], &v, 8);
    }
    Check(WriteFileAtomically(memory_path, bytes, 0644));
  }
  MemoryFile file = Check(MemoryFile::Open(memory_path));
  // Page cache warm for everyone.
  volatile uint64_t sum = 0;
  for (uint64_t at = 0; at < file.size(); at += kPage) sum += file.data()[at];

  std::printf("machine: %u CPUs; memory file %llu MiB on %s; %d runs\n",
              std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(kRegion >> 20), dir.c_str(),
              runs);

  // 1a. Raw handler.
  std::vector<int64_t> raw_p50, raw_p99;
  for (int r = 0; r < runs; ++r) {
    const std::string socket = dir + "/raw.sock";
    UniqueFd listener = Check(ListenUnixStream(socket, 0600, "raw"));
    std::atomic<bool> stop{false};
    std::thread handler(RawHandler, listener.get(), file.data(), file.size(),
                        std::ref(stop));
    UniqueFd connection;
    testing::FakeFirecracker fc = Connect(socket, kRegion, &connection);
    Latencies l;
    TouchAll(fc.memory(), fc.bytes(), l);
    stop = true;
    handler.join();
    raw_p50.push_back(l.Quantile(0.5));
    raw_p99.push_back(l.Quantile(0.99));
  }

  // 1b. Our server, one VM at a time (no working set: all on demand).
  ServerOptions options;
  options.memory_file = memory_path;
  options.socket_path = dir + "/server.sock";
  options.threads = absl::GetFlag(FLAGS_threads);
  options.record_window = absl::ZeroDuration();
  options.prefetch = false;
  options.log = [](const std::string&) {};  // The tables are the output.
  std::vector<int64_t> ours_p50, ours_p99;
  {
    std::unique_ptr<Server> server = Check(Server::Create(options));
    std::thread serving([&] { (void)server->Run(); });
    for (int r = 0; r < runs; ++r) {
      UniqueFd connection;
      testing::FakeFirecracker fc =
          Connect(options.socket_path, kRegion, &connection);
      Latencies l;
      TouchAll(fc.memory(), fc.bytes(), l);
      ours_p50.push_back(l.Quantile(0.5));
      ours_p99.push_back(l.Quantile(0.99));
    }
    // 2. Many VMs at once, one thread each (like vCPUs of separate VMs):
    // flat out (every thread faults back to back: the worst case), and
    // paced (each VM faults once a millisecond: 32,000 faults/s in all).
    const int vms = absl::GetFlag(FLAGS_vms);
    auto fleet_run = [&](int64_t period_ns, uint64_t bytes) {
      std::vector<Latencies> each(vms);
      std::vector<testing::FakeFirecracker> fleet;
      std::vector<UniqueFd> connections(vms);
      for (int i = 0; i < vms; ++i) {
        fleet.push_back(Connect(options.socket_path, bytes, &connections[i]));
      }
      std::vector<std::thread> touching;
      for (int i = 0; i < vms; ++i) {
        touching.emplace_back([&, i] {
          TouchAll(fleet[i].memory(), fleet[i].bytes(), each[i], period_ns);
        });
      }
      for (std::thread& t : touching) t.join();
      Latencies all;
      for (Latencies& l : each) {
        all.ns.insert(all.ns.end(), l.ns.begin(), l.ns.end());
      }
      return all;
    };
    auto alone_run = [&](int64_t period_ns, uint64_t bytes) {
      Latencies single;
      for (int i = 0; i < 4; ++i) {
        UniqueFd connection;
        testing::FakeFirecracker fc =
            Connect(options.socket_path, bytes, &connection);
        TouchAll(fc.memory(), fc.bytes(), single, period_ns);
      }
      return single;
    };
    Latencies flat = fleet_run(0, kSmallRegion);
    Latencies flat_alone = alone_run(0, kSmallRegion);
    constexpr int64_t kPeriod = 1000000;
    constexpr uint64_t kPacedBytes = 1 << 20;  // 256 faults, 0.26 s.
    Latencies paced = fleet_run(kPeriod, kPacedBytes);
    Latencies paced_alone = alone_run(kPeriod, kPacedBytes);
    server->Stop();
    serving.join();

    std::sort(raw_p50.begin(), raw_p50.end());
    std::sort(raw_p99.begin(), raw_p99.end());
    std::sort(ours_p50.begin(), ours_p50.end());
    std::sort(ours_p99.begin(), ours_p99.end());
    auto median = [](const std::vector<int64_t>& v) { return v[v.size() / 2]; };
    std::printf(
        "\n1. per-fault latency (%llu MiB region, one thread, %d runs; "
        "median of runs (min to max))\n",
        static_cast<unsigned long long>(kRegion >> 20), runs);
    std::printf("   raw handler   p50 %s (%s to %s)  p99 %s (%s to %s)\n",
                Us(median(raw_p50)).c_str(), Us(raw_p50.front()).c_str(),
                Us(raw_p50.back()).c_str(), Us(median(raw_p99)).c_str(),
                Us(raw_p99.front()).c_str(), Us(raw_p99.back()).c_str());
    std::printf("   fcvm server   p50 %s (%s to %s)  p99 %s (%s to %s)\n",
                Us(median(ours_p50)).c_str(), Us(ours_p50.front()).c_str(),
                Us(ours_p50.back()).c_str(), Us(median(ours_p99)).c_str(),
                Us(ours_p99.front()).c_str(), Us(ours_p99.back()).c_str());
    std::printf("   ratio         p50 %.2fx  p99 %.2fx\n",
                double(median(ours_p50)) / median(raw_p50),
                double(median(ours_p99)) / median(raw_p99));
    std::printf(
        "\n2. %d VMs at once (one faulting thread each; %d server "
        "threads)\n",
        vms, options.threads);
    auto row = [](const char* what, Latencies& alone, Latencies& fleet) {
      const int64_t s99 = alone.Quantile(0.99), f99 = fleet.Quantile(0.99);
      std::printf(
          "   %-34s alone p50 %s p99 %s | at once p50 %s p99 %s "
          "(p99 %.2fx)\n",
          what, Us(alone.Quantile(0.5)).c_str(), Us(s99).c_str(),
          Us(fleet.Quantile(0.5)).c_str(), Us(f99).c_str(), double(f99) / s99);
    };
    row("flat out, 8 MiB each", flat_alone, flat);
    row("paced, a fault per ms, 1 MiB each", paced_alone, paced);
  }

  // 3. Bulk copy by batch size.
  std::printf("\n3. bulk copy of %llu MiB (GB/s; median of %d runs)\n",
              static_cast<unsigned long long>(kRegion >> 20), runs);
  std::printf("   %-9s %-16s %-16s %s\n", "batch", "raw UFFDIO_COPY",
              "server prefetch", "ratio");
  for (uint64_t batch :
       {uint64_t{4} << 10, uint64_t{16} << 10, uint64_t{64} << 10,
        uint64_t{256} << 10, uint64_t{1} << 20, uint64_t{2} << 20}) {
    std::vector<double> raw_gbps, ours_gbps;
    for (int r = 0; r < runs; ++r) {
      testing::FakeFirecracker fc =
          Check(testing::FakeFirecracker::Create(1, kRegion));
      const int64_t start = NowNs();
      for (uint64_t at = 0; at < kRegion; at += batch) {
        (void)Copy(fc.uffd(), reinterpret_cast<uint64_t>(fc.memory()) + at,
                   file.data() + at, batch, /*wake=*/false);
      }
      raw_gbps.push_back(double(kRegion) / (NowNs() - start));
    }
    // The server: a working set of every page, prefetched in `batch`.
    WorkingSet set;
    set.set_memory_file_size(file.size());
    set.set_memory_file_mtime_ns(file.mtime_ns());
    set.set_page_size(kPage);
    for (uint64_t at = 0; at < kRegion; at += kPage) set.add_page_offsets(at);
    const std::string set_path = dir + "/memory.working-set";
    Check(WriteFileAtomically(set_path, set.SerializeAsString(), 0644));
    ServerOptions prefetching = options;
    prefetching.prefetch = true;
    prefetching.batch_bytes = batch;
    std::unique_ptr<Server> server = Check(Server::Create(prefetching));
    std::thread serving([&] { (void)server->Run(); });
    for (int r = 0; r < runs; ++r) {
      testing::FakeFirecracker fc =
          Check(testing::FakeFirecracker::Create(1, kRegion));
      UniqueFd connection = Check(fc.Connect(prefetching.socket_path));
      const int64_t start = NowNs();
      Check(testing::FakeFirecracker::Send(connection.get(),
                                           fc.Handshake("1.12"), {fc.uffd()}));
      // Done when the last page is resident (prefetch goes in file order).
      unsigned char resident = 0;
      uint8_t* last = fc.memory() + kRegion - kPage;
      while (mincore(last, kPage, &resident) == 0 && (resident & 1) == 0) {
        usleep(20);
      }
      ours_gbps.push_back(double(kRegion) / (NowNs() - start));
    }
    server->Stop();
    serving.join();
    unlink(set_path.c_str());
    std::sort(raw_gbps.begin(), raw_gbps.end());
    std::sort(ours_gbps.begin(), ours_gbps.end());
    const double raw = raw_gbps[raw_gbps.size() / 2];
    const double ours = ours_gbps[ours_gbps.size() / 2];
    std::printf("   %-9s %-16s %-16s %.0f%%\n",
                batch >= (1 << 20) ? absl::StrCat(batch >> 20, " MiB").c_str()
                                   : absl::StrCat(batch >> 10, " KiB").c_str(),
                absl::StrFormat("%.2f", raw).c_str(),
                absl::StrFormat("%.2f", ours).c_str(), 100 * ours / raw);
  }

  // 4. memcpy, for scale.
  std::vector<uint8_t> target(kRegion);
  std::memset(target.data(), 1, target.size());
  std::vector<double> gbps;
  for (int r = 0; r < runs; ++r) {
    const int64_t start = NowNs();
    std::memcpy(target.data(), file.data(), kRegion);
    gbps.push_back(double(kRegion) / (NowNs() - start));
  }
  std::sort(gbps.begin(), gbps.end());
  std::printf("\n4. memcpy from the file's mapping: %.2f GB/s (median of %d)\n",
              gbps[gbps.size() / 2], runs);
  (void)sum;
  unlink(memory_path.c_str());
  unlink((dir + "/raw.sock").c_str());
  rmdir(dir.c_str());
  return 0;
}

}  // namespace
}  // namespace fcvm::uffd

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return fcvm::uffd::Main();
}
