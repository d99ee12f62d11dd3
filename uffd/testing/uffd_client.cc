// uffd_client: does what Firecracker does when it restores a snapshot with
// a UFFD memory backend, then touches its memory and checks every byte.
//
//   uffd_client --socket S --memory FILE [--regions 2] [--region_mib 8]
//               [--variant 1.4|1.10|1.12] [--threads 4] [--stride 1]
//               [--first_page 0] [--pages N] [--settle_ms 0]
//               [--dontneed 16] [--hold]
//               [--malformed KIND]
//
// 1. Anonymous MAP_PRIVATE | MAP_NORESERVE memory, split into regions that
//    map consecutive parts of the memory file.
// 2. A userfaultfd (UFFD_FEATURE_EVENT_REMOVE, as Firecracker asks with a
//    balloon), each region registered in MISSING mode.
// 3. Connect, send the regions as JSON in the fields of `--variant`, with
//    the uffd as SCM_RIGHTS.
// 4. Touch pages [first_page, first_page + pages) with step `stride` from
//    `threads` threads, half of them by a write (the other half by a read),
//    timing each first touch (a fault), and compare every byte with the
//    file (the written byte aside).
// 5. --dontneed N: MADV_DONTNEED N touched pages (REMOVE events), read them
//    again: they must be zeros.
// 6. --hold: wait for stdin to close before exiting (clients at once).
//
// --malformed KIND sends a bad handshake instead and waits for the server
// to close the connection: bad_json, not_array, unknown_field, no_fd,
// two_fds, not_uffd, outside_file, overlap, absurd_size,
// uninitialized_uffd (no UFFDIO_API on it), silent (connects,
// sends nothing), exit_after_handshake (a good handshake, then exit at
// once, closing everything).
//
// Prints one JSON line: {"pages":N,"mismatches":M,"zero_mismatches":Z,
// "fault_p50_ns":..,"fault_p99_ns":..,"fault_max_ns":..}. Exit 0 when
// nothing mismatched.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "uffd/testing/fake_firecracker.h"

ABSL_FLAG(std::string, socket, "", "the memory server's socket");
ABSL_FLAG(std::string, memory, "", "the memory file (to check bytes)");
ABSL_FLAG(int, regions, 2, "regions");
ABSL_FLAG(int, region_mib, 8, "MiB per region");
ABSL_FLAG(std::string, variant, "1.12", "handshake fields: 1.4, 1.10, 1.12");
ABSL_FLAG(int, threads, 4, "touching threads");
ABSL_FLAG(uint64_t, page_size, 4096,
          "4096, or 2097152 for hugetlbfs pages (needs vm.nr_hugepages)");
ABSL_FLAG(int, stride, 1, "touch every Nth page");
ABSL_FLAG(int64_t, first_page, 0, "first page to touch");
ABSL_FLAG(int64_t, pages, -1, "pages to touch (-1: to the end)");
ABSL_FLAG(int, dontneed, 0, "pages to MADV_DONTNEED and read back as zeros");
ABSL_FLAG(int, settle_ms, 0,
          "wait this long after the handshake before touching memory (what "
          "Firecracker spends finishing the restore before it is resumed)");
ABSL_FLAG(int, churn_pages, 0,
          "the first N pages are not touched by the touching threads: one "
          "more thread faults each in, checks it, gives it back "
          "(MADV_DONTNEED), checks it reads zeros, --churn_rounds times, "
          "while the others fault: REMOVE events among the faults");
ABSL_FLAG(int, churn_rounds, 20, "rounds of --churn_pages");
ABSL_FLAG(bool, hold, false, "wait for stdin to close before exiting");
ABSL_FLAG(std::string, malformed, "", "send this kind of bad handshake");

namespace fcvm::uffd {
namespace {

constexpr uint64_t kPage = 4096;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "uffd_client: %s\n", why.c_str());
  std::exit(2);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Waits for the server to close the connection (it does after reading a
// handshake, accepted or not).
void WaitForClose(int socket) {
  char byte;
  while (read(socket, &byte, 1) > 0) {
  }
}

int Main() {
  const std::string socket_path = absl::GetFlag(FLAGS_socket);
  const std::string memory_path = absl::GetFlag(FLAGS_memory);
  const int regions = absl::GetFlag(FLAGS_regions);
  const uint64_t region_bytes = uint64_t(absl::GetFlag(FLAGS_region_mib)) << 20;
  const uint64_t total = region_bytes * regions;
  const std::string variant = absl::GetFlag(FLAGS_variant);
  const std::string malformed = absl::GetFlag(FLAGS_malformed);
  const uint64_t page_bytes = absl::GetFlag(FLAGS_page_size);

  UniqueFd memory_fd(open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!memory_fd) Die(absl::StrCat("open ", memory_path));
  struct stat st;
  fstat(memory_fd.get(), &st);
  if (static_cast<uint64_t>(st.st_size) < total) {
    Die(absl::StrCat(memory_path, " is smaller than ", total, " bytes"));
  }
  const uint8_t* file = static_cast<const uint8_t*>(
      mmap(nullptr, total, PROT_READ, MAP_SHARED, memory_fd.get(), 0));
  if (file == MAP_FAILED) Die("mmap memory file");

  absl::StatusOr<testing::FakeFirecracker> fc =
      testing::FakeFirecracker::Create(regions, region_bytes, page_bytes);
  if (!fc.ok()) Die(std::string(fc.status().message()));
  uint8_t* guest = fc->memory();
  const uint64_t base = reinterpret_cast<uint64_t>(guest);
  const std::string json = fc->Handshake(variant);
  absl::StatusOr<UniqueFd> socket = fc->Connect(socket_path);
  if (!socket.ok()) Die(std::string(socket.status().message()));
  auto Region = [&](uint64_t b, uint64_t size, uint64_t offset,
                    const std::string& extra = "") {
    return testing::FakeFirecracker::RegionJson(b, size, offset, variant,
                                                extra);
  };
  auto Send = [&](int fd, const std::string& body,
                  const std::vector<int>& fds) {
    absl::Status sent = testing::FakeFirecracker::Send(fd, body, fds);
    if (!sent.ok()) Die(std::string(sent.message()));
  };

  if (!malformed.empty()) {
    const int fd = fc->uffd();
    if (malformed == "bad_json") {
      Send(socket->get(), "[{\"base_host_virt_addr\": 4096,", {fd});
    } else if (malformed == "not_array") {
      Send(socket->get(), Region(base, region_bytes, 0), {fd});
    } else if (malformed == "unknown_field") {
      Send(socket->get(),
           absl::StrCat("[", Region(base, region_bytes, 0, R"(,"evil":true)"),
                        "]"),
           {fd});
    } else if (malformed == "no_fd") {
      Send(socket->get(), json, {});
    } else if (malformed == "two_fds") {
      Send(socket->get(), json, {fd, memory_fd.get()});
    } else if (malformed == "not_uffd") {
      Send(socket->get(), json, {memory_fd.get()});
    } else if (malformed == "outside_file") {
      Send(
          socket->get(),
          absl::StrCat("[", Region(base, region_bytes, uint64_t{1} << 40), "]"),
          {fd});
    } else if (malformed == "overlap") {
      Send(socket->get(),
           absl::StrCat("[", Region(base, 2 * kPage, 0), ",",
                        Region(base + kPage, 2 * kPage, 0), "]"),
           {fd});
    } else if (malformed == "absurd_size") {
      Send(socket->get(),
           absl::StrCat("[", Region(base, uint64_t{1} << 62, 0), "]"), {fd});
    } else if (malformed == "uninitialized_uffd") {
      // A userfaultfd that never had UFFDIO_API: nothing can be served.
      UniqueFd raw(
          static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
      if (!raw) Die("userfaultfd");
      Send(socket->get(), json, {raw.get()});
    } else if (malformed == "silent") {
      // Nothing.
    } else if (malformed == "exit_after_handshake") {
      Send(socket->get(), json, {fd});
      return 0;  // Closes everything, maps nothing in.
    } else {
      Die(absl::StrCat("unknown --malformed ", malformed));
    }
    WaitForClose(socket->get());
    std::printf("{\"malformed\":\"%s\",\"closed\":true}\n", malformed.c_str());
    return 0;
  }

  Send(socket->get(), json, {fc->uffd()});
  if (const int settle = absl::GetFlag(FLAGS_settle_ms); settle > 0) {
    usleep(settle * 1000);
  }

  const uint64_t all_pages = total / page_bytes;
  const int64_t first = absl::GetFlag(FLAGS_first_page);
  const int64_t wanted = absl::GetFlag(FLAGS_pages);
  const uint64_t end =
      wanted < 0 ? all_pages : std::min<uint64_t>(all_pages, first + wanted);
  const int stride = std::max(1, absl::GetFlag(FLAGS_stride));
  std::vector<uint64_t> pages;
  const uint64_t churn = absl::GetFlag(FLAGS_churn_pages);
  for (uint64_t p = std::max<uint64_t>(first, churn); p < end; p += stride) {
    pages.push_back(p);
  }

  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  std::vector<std::vector<int64_t>> latencies(threads);
  std::atomic<uint64_t> mismatches{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = t; i < pages.size(); i += threads) {
        const uint64_t p = pages[i];
        volatile uint8_t* page = guest + p * page_bytes;
        const bool write = (p % 2) == 1;
        const int64_t start = NowNs();
        if (write) {
          page[7] = static_cast<uint8_t>(file[p * page_bytes + 7] ^ 0xff);
        } else {
          (void)page[0];
        }
        latencies[t].push_back(NowNs() - start);
        for (uint64_t b = 0; b < page_bytes; ++b) {
          const uint8_t want =
              write && b == 7
                  ? static_cast<uint8_t>(file[p * page_bytes + b] ^ 0xff)
                  : file[p * page_bytes + b];
          if (page[b] != want) {
            ++mismatches;
            break;
          }
        }
      }
    });
  }
  std::atomic<uint64_t> churn_mismatches{0};
  if (churn > 0) {
    workers.emplace_back([&] {
      for (int round = 0; round < absl::GetFlag(FLAGS_churn_rounds); ++round) {
        for (uint64_t p = 0; p < churn; ++p) {
          volatile uint8_t* page = guest + p * page_bytes;
          // The file's bytes the first time, zeros once given back.
          const bool fresh = round == 0;
          for (uint64_t b = 0; b < page_bytes; b += 512) {
            if (page[b] != (fresh ? file[p * page_bytes + b] : 0)) {
              ++churn_mismatches;
              break;
            }
          }
          if (madvise(const_cast<uint8_t*>(page), page_bytes, MADV_DONTNEED) !=
              0) {
            ++churn_mismatches;
          }
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  mismatches += churn_mismatches.load();

  // Pages given back: a REMOVE each, zeros when read again.
  uint64_t zero_mismatches = 0;
  const int dontneed =
      std::min<int>(absl::GetFlag(FLAGS_dontneed), pages.size());
  for (int i = 0; i < dontneed; ++i) {
    uint8_t* page = guest + pages[i] * page_bytes;
    if (madvise(page, page_bytes, MADV_DONTNEED) != 0) Die("madvise");
  }
  for (int i = 0; i < dontneed; ++i) {
    const volatile uint8_t* page = guest + pages[i] * page_bytes;
    for (uint64_t b = 0; b < page_bytes; ++b) {
      if (page[b] != 0) {
        ++zero_mismatches;
        break;
      }
    }
  }

  std::vector<int64_t> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto quantile = [&](double q) -> int64_t {
    if (all.empty()) return 0;
    return all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))];
  };
  std::printf(
      "{\"pages\":%zu,\"mismatches\":%llu,\"zero_mismatches\":%llu,"
      "\"fault_p50_ns\":%lld,\"fault_p99_ns\":%lld,\"fault_max_ns\":%lld}\n",
      pages.size(), static_cast<unsigned long long>(mismatches.load()),
      static_cast<unsigned long long>(zero_mismatches),
      static_cast<long long>(quantile(0.5)),
      static_cast<long long>(quantile(0.99)),
      static_cast<long long>(all.empty() ? 0 : all.back()));
  std::fflush(stdout);
  if (absl::GetFlag(FLAGS_hold)) {
    char buffer[64];
    while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
    }
  }
  return mismatches == 0 && zero_mismatches == 0 ? 0 : 1;
}

}  // namespace
}  // namespace fcvm::uffd

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return fcvm::uffd::Main();
}
