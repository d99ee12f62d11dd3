// uffd_client: does what Firecracker does when it restores a snapshot with
// a UFFD memory backend, then touches its memory and checks every byte.
//
//   uffd_client --socket S --memory FILE [--regions 2] [--region_mib 8]
//               [--variant 1.4|1.10|1.12] [--threads 4] [--stride 1]
//               [--first_page 0] [--pages N] [--settle_ms 0]
//               [--dontneed 16] [--extra_fields JSON] [--split_handshake]
//               [--close_socket_after_handshake] [--in_new_pid_namespace]
//               [--hold] [--expect_refusal] [--malformed KIND]
//
// 1. Anonymous MAP_PRIVATE | MAP_NORESERVE memory, split into regions that
//    map consecutive parts of the memory file.
// 2. A userfaultfd (UFFD_FEATURE_EVENT_REMOVE, as Firecracker asks with a
//    balloon), each region registered in MISSING mode.
// 3. Connect, send the regions as JSON in the fields of `--variant` (plus
//    `--extra_fields` in each region, as a newer Firecracker would), with
//    the uffd as SCM_RIGHTS; --split_handshake sends it in three writes,
//    the uffd with the first. --close_socket_after_handshake closes the
//    socket then (as Firecracker before 1.12 does; 1.12+ keeps it open
//    until it exits).
// 4. Touch pages [first_page, first_page + pages) with step `stride` from
//    `threads` threads, half of them by a write (the other half by a read),
//    timing each first touch (a fault), and compare every byte with the
//    file (the written byte aside).
// 5. --dontneed N: MADV_DONTNEED N touched pages (REMOVE events), read them
//    again: they must be zeros.
// 6. --hold: then read commands from stdin until it closes, each line
//    "touch FIRST COUNT" touching pages [FIRST, FIRST + COUNT) as in 4 and
//    printing a result line (clients at once; a VM that must still be
//    served later).
//
// --expect_refusal sends a good handshake, waits for the server to close
// the connection without touching anything (a refused VM's faults would
// never be served), and prints {"refused":true}.
// --in_new_pid_namespace runs all of this as the first process of a new
// pid namespace (needs root), as a jailed Firecracker is.
// --malformed KIND sends a bad handshake instead and waits for the server
// to close the connection: bad_json, not_array, no_fd, two_fds, not_uffd,
// outside_file, overlap, absurd_size, float_size, truncated (half a
// handshake, then nothing), late_fd (the uffd with the second part),
// uninitialized_uffd (no UFFDIO_API on it), silent (connects, sends
// nothing), exit_after_handshake (a good handshake, then exit at once,
// closing everything).
//
// Prints one JSON line per touch: {"pages":N,"mismatches":M,
// "zero_mismatches":Z,"fault_p50_ns":..,"fault_p99_ns":..,
// "fault_max_ns":..}. Exit 0 when nothing mismatched.
#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
ABSL_FLAG(bool, hold, false,
          "then run \"touch FIRST COUNT\" lines from stdin until it closes");
ABSL_FLAG(std::string, extra_fields, "",
          "JSON members added to every region of the handshake");
ABSL_FLAG(bool, split_handshake, false, "send the handshake in three writes");
ABSL_FLAG(bool, close_socket_after_handshake, false,
          "close the socket once the handshake is sent");
ABSL_FLAG(bool, expect_refusal, false,
          "wait for the server to close the connection; touch nothing");
ABSL_FLAG(bool, in_new_pid_namespace, false,
          "run as the first process of a new pid namespace");
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

// What one touch found.
struct Touched {
  size_t pages = 0;
  uint64_t mismatches = 0;
  uint64_t zero_mismatches = 0;
  std::vector<int64_t> latencies;  // Of each first touch, ns.
};

void Print(Touched& t) {
  std::sort(t.latencies.begin(), t.latencies.end());
  auto quantile = [&](double q) -> int64_t {
    if (t.latencies.empty()) return 0;
    return t.latencies[std::min(t.latencies.size() - 1,
                                static_cast<size_t>(q * t.latencies.size()))];
  };
  std::printf(
      "{\"pages\":%zu,\"mismatches\":%llu,\"zero_mismatches\":%llu,"
      "\"fault_p50_ns\":%lld,\"fault_p99_ns\":%lld,\"fault_max_ns\":%lld}\n",
      t.pages, static_cast<unsigned long long>(t.mismatches),
      static_cast<unsigned long long>(t.zero_mismatches),
      static_cast<long long>(quantile(0.5)),
      static_cast<long long>(quantile(0.99)),
      static_cast<long long>(t.latencies.empty() ? 0 : t.latencies.back()));
  std::fflush(stdout);
}

// Touches `pages` from `threads` threads (odd pages by a write, even ones
// by a read) and checks every byte against `file`; with `churn` pages, one
// more thread faults each of the first `churn` pages in, checks it, gives
// it back, `churn_rounds` times; then gives back `dontneed` of the pages
// touched and checks they read as zeros.
Touched Touch(uint8_t* guest, const uint8_t* file, uint64_t page_bytes,
              const std::vector<uint64_t>& pages, int threads, uint64_t churn,
              int churn_rounds, int dontneed) {
  Touched out;
  out.pages = pages.size();
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
  if (churn > 0) {
    workers.emplace_back([&] {
      for (int round = 0; round < churn_rounds; ++round) {
        for (uint64_t p = 0; p < churn; ++p) {
          volatile uint8_t* page = guest + p * page_bytes;
          // The file's bytes the first time, zeros once given back.
          const bool fresh = round == 0;
          for (uint64_t b = 0; b < page_bytes; b += 512) {
            if (page[b] != (fresh ? file[p * page_bytes + b] : 0)) {
              ++mismatches;
              break;
            }
          }
          if (madvise(const_cast<uint8_t*>(page), page_bytes, MADV_DONTNEED) !=
              0) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  out.mismatches = mismatches.load();

  // Pages given back: a REMOVE each, zeros when read again.
  const int n = std::min<int>(dontneed, pages.size());
  for (int i = 0; i < n; ++i) {
    uint8_t* page = guest + pages[i] * page_bytes;
    if (madvise(page, page_bytes, MADV_DONTNEED) != 0) Die("madvise");
  }
  for (int i = 0; i < n; ++i) {
    const volatile uint8_t* page = guest + pages[i] * page_bytes;
    for (uint64_t b = 0; b < page_bytes; ++b) {
      if (page[b] != 0) {
        ++out.zero_mismatches;
        break;
      }
    }
  }
  for (const auto& l : latencies) {
    out.latencies.insert(out.latencies.end(), l.begin(), l.end());
  }
  return out;
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
  const uint8_t* file = nullptr;
  // A client that expects a refusal touches nothing: the file (which may
  // have changed, the reason for the refusal) is not needed.
  if (!absl::GetFlag(FLAGS_expect_refusal)) {
    struct stat st;
    fstat(memory_fd.get(), &st);
    if (static_cast<uint64_t>(st.st_size) < total) {
      Die(absl::StrCat(memory_path, " is smaller than ", total, " bytes"));
    }
    // A copy of what the file held when this client started, whatever is
    // done to it later (a test that changes the file under the server; a
    // MAP_PRIVATE mapping would not do: truncation takes even its copied
    // pages away).
    void* mapped = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) Die("mmap a copy of the memory file");
    for (uint64_t at = 0; at < total;) {
      const ssize_t n = pread(memory_fd.get(), static_cast<char*>(mapped) + at,
                              total - at, at);
      if (n <= 0) Die(absl::StrCat("read ", memory_path));
      at += n;
    }
    file = static_cast<const uint8_t*>(mapped);
  }

  absl::StatusOr<testing::FakeFirecracker> fc =
      testing::FakeFirecracker::Create(regions, region_bytes, page_bytes);
  if (!fc.ok()) Die(std::string(fc.status().message()));
  uint8_t* guest = fc->memory();
  const uint64_t base = reinterpret_cast<uint64_t>(guest);
  auto Region = [&](uint64_t b, uint64_t size, uint64_t offset,
                    const std::string& extra = "") {
    return testing::FakeFirecracker::RegionJson(b, size, offset, variant, extra,
                                                page_bytes);
  };
  std::string json = "[";
  const std::string extra = absl::GetFlag(FLAGS_extra_fields);
  for (int i = 0; i < regions; ++i) {
    absl::StrAppend(&json, i ? "," : "",
                    Region(base + i * region_bytes, region_bytes,
                           i * region_bytes, extra.empty() ? "" : "," + extra));
  }
  absl::StrAppend(&json, "]");
  absl::StatusOr<UniqueFd> socket = fc->Connect(socket_path);
  if (!socket.ok()) Die(std::string(socket.status().message()));
  auto Send = [&](int fd, const std::string& body,
                  const std::vector<int>& fds) {
    absl::Status sent = testing::FakeFirecracker::Send(fd, body, fds);
    if (!sent.ok()) Die(std::string(sent.message()));
  };

  if (!malformed.empty()) {
    const int fd = fc->uffd();
    if (malformed == "bad_json") {
      // Complete (brackets balanced), and not JSON: no colon.
      Send(socket->get(), "[{\"base_host_virt_addr\" 4096}]", {fd});
    } else if (malformed == "not_array") {
      Send(socket->get(), Region(base, region_bytes, 0), {fd});
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
    } else if (malformed == "float_size") {
      Send(socket->get(),
           absl::StrCat(R"([{"base_host_virt_addr":)", base,
                        R"(,"size":4096.0,"offset":0}])"),
           {fd});
    } else if (malformed == "truncated") {
      Send(socket->get(), json.substr(0, json.size() / 2), {fd});
    } else if (malformed == "late_fd") {
      Send(socket->get(), json.substr(0, 10), {});
      // Both parts queued at once would reach the server in one read, fd
      // and all; so the second goes once the first has been read. Nothing
      // signals that to the sender: SIOCOUTQ (bytes the peer has not read
      // yet) is looked at every millisecond.
      for (int i = 0; i < 10000; ++i) {
        int unread = 0;
        if (ioctl(socket->get(), SIOCOUTQ, &unread) != 0) Die("SIOCOUTQ");
        if (unread == 0) break;
        usleep(1000);
      }
      Send(socket->get(), json.substr(10), {fd});
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

  if (absl::GetFlag(FLAGS_split_handshake)) {
    // Three writes: a stream socket may deliver them in three reads (the
    // kernel never joins the part carrying the fd to the next).
    const size_t third = json.size() / 3;
    Send(socket->get(), json.substr(0, third), {fc->uffd()});
    Send(socket->get(), json.substr(third, third), {});
    Send(socket->get(), json.substr(2 * third), {});
  } else {
    Send(socket->get(), json, {fc->uffd()});
  }
  if (absl::GetFlag(FLAGS_expect_refusal)) {
    WaitForClose(socket->get());
    std::printf("{\"refused\":true}\n");
    return 0;
  }
  if (absl::GetFlag(FLAGS_close_socket_after_handshake)) socket->reset();
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
  Touched touched =
      Touch(guest, file, page_bytes, pages, threads, churn,
            absl::GetFlag(FLAGS_churn_rounds), absl::GetFlag(FLAGS_dontneed));
  bool all_right = touched.mismatches == 0 && touched.zero_mismatches == 0;
  Print(touched);
  if (absl::GetFlag(FLAGS_hold)) {
    std::string line;
    while (std::getline(std::cin, line)) {
      std::vector<std::string> words = absl::StrSplit(line, ' ');
      uint64_t from = 0, count = 0;
      if (words.size() != 3 || words[0] != "touch" ||
          !absl::SimpleAtoi(words[1], &from) ||
          !absl::SimpleAtoi(words[2], &count)) {
        Die(absl::StrCat("unknown command: ", line));
      }
      std::vector<uint64_t> more;
      for (uint64_t p = from; p < std::min(all_pages, from + count); ++p) {
        more.push_back(p);
      }
      Touched again = Touch(guest, file, page_bytes, more, threads, 0, 0, 0);
      all_right &= again.mismatches == 0;
      Print(again);
    }
  }
  return all_right ? 0 : 1;
}

// The rest of the client as the first process (pid 1) of a new pid
// namespace, this process waiting for it: its peer credentials then name
// no pid the server can see from its own namespace.
int InNewPidNamespace() {
  if (unshare(CLONE_NEWPID) != 0) Die("unshare(CLONE_NEWPID) (needs root)");
  std::fflush(stdout);
  const pid_t child = fork();
  if (child < 0) Die("fork");
  if (child == 0) std::exit(Main());
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

}  // namespace
}  // namespace fcvm::uffd

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_in_new_pid_namespace)) {
    return fcvm::uffd::InNewPidNamespace();
  }
  return fcvm::uffd::Main();
}
