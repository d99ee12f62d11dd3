#include "uffd/testing/fake_firecracker.h"

#include <linux/mman.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "uffd/userfaultfd.h"

namespace fcvm::uffd::testing {

[[nodiscard]] absl::StatusOr<FakeFirecracker> FakeFirecracker::Create(
    int regions, uint64_t region_bytes, uint64_t page_size) {
  FakeFirecracker fc;
  fc.page_size_ = page_size;
  const int huge = page_size == (2 << 20) ? MAP_HUGETLB | MAP_HUGE_2MB : 0;
  fc.regions_ = regions;
  fc.region_bytes_ = region_bytes;
  fc.bytes_ = region_bytes * regions;
  void* memory =
      mmap(nullptr, fc.bytes_, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | huge, -1, 0);
  if (memory == MAP_FAILED) {
    return ErrnoStatus(huge ? "mmap guest memory in 2 MiB huge pages "
                              "(vm.nr_hugepages)"
                            : "mmap guest memory");
  }
  fc.memory_ = static_cast<uint8_t*>(memory);
  ASSIGN_OR_RETURN(fc.uffd_, CreateUserfaultfd(UFFD_FEATURE_EVENT_REMOVE));
  for (int i = 0; i < regions; ++i) {
    RETURN_IF_ERROR(RegisterMissing(
        fc.uffd_.get(), fc.memory_ + i * region_bytes, region_bytes));
  }
  return fc;
}

FakeFirecracker::FakeFirecracker(FakeFirecracker&& other) noexcept
    : regions_(other.regions_),
      page_size_(other.page_size_),
      region_bytes_(other.region_bytes_),
      memory_(std::exchange(other.memory_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      uffd_(std::move(other.uffd_)) {}

FakeFirecracker::~FakeFirecracker() {
  if (memory_ != nullptr) munmap(memory_, bytes_);
}

std::string FakeFirecracker::RegionJson(uint64_t base, uint64_t size,
                                        uint64_t offset,
                                        const std::string& variant,
                                        const std::string& extra,
                                        uint64_t page_size) {
  std::string json = absl::StrCat(R"({"base_host_virt_addr":)", base,
                                  R"(,"size":)", size, R"(,"offset":)", offset);
  if (variant == "1.10") {
    absl::StrAppend(&json, R"(,"page_size_kib":)", page_size);
  }
  if (variant == "1.12") {
    absl::StrAppend(&json, R"(,"page_size_kib":)", page_size,
                    R"(,"page_size":)", page_size);
  }
  return absl::StrCat(json, extra, "}");
}

std::string FakeFirecracker::Handshake(const std::string& variant) const {
  const uint64_t base = reinterpret_cast<uint64_t>(memory_);
  std::string json = "[";
  for (int i = 0; i < regions_; ++i) {
    absl::StrAppend(&json, i ? "," : "",
                    RegionJson(base + i * region_bytes_, region_bytes_,
                               i * region_bytes_, variant, "", page_size_));
  }
  return absl::StrCat(json, "]");
}

[[nodiscard]] absl::StatusOr<UniqueFd> FakeFirecracker::Connect(
    const std::string& socket_path) const {
  return ConnectUnixStream(socket_path, "the memory server");
}

[[nodiscard]] absl::Status FakeFirecracker::Send(int socket,
                                                 const std::string& body,
                                                 const std::vector<int>& fds) {
  iovec iov = {const_cast<char*>(body.data()), body.size()};
  msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  std::vector<char> control(
      CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
  if (!fds.empty()) {
    message.msg_control = control.data();
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (sendmsg(socket, &message, MSG_NOSIGNAL) < 0) {
    return ErrnoStatus("send the handshake");
  }
  return absl::OkStatus();
}

}  // namespace fcvm::uffd::testing
