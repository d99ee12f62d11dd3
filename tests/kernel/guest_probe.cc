// PID 1 of the kernel boot tests: checks, from inside the guest, the kernel
// features fcvm relies on, prints one line per check, then resets the VM
// (QEMU runs with -no-reboot, so the reset ends it). Built fully static for
// each architecture and packed alone into an initramfs by boot_test.cc.
//
// Output lines (the host parses them):
//   FCVM-PROBE <check> ok
//   FCVM-PROBE <check> FAIL <why>
//   FCVM-PROBE-DONE passed=<n> failed=<n>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

int g_passed = 0;
int g_failed = 0;

// A check returns "" on success, else why it failed.
void Check(const char* name, const std::function<std::string()>& check) {
  std::string why = check();
  if (why.empty()) {
    ++g_passed;
    std::printf("FCVM-PROBE %s ok\n", name);
  } else {
    ++g_failed;
    std::printf("FCVM-PROBE %s FAIL %s\n", name, why.c_str());
  }
  std::fflush(stdout);
}

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// "" if every word in `wanted` is a whitespace-separated word of `text`.
std::string MissingWords(const std::string& text,
                         const std::vector<std::string>& wanted,
                         const std::string& where) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::string missing;
  for (const std::string& w : wanted) {
    bool found = false;
    for (const std::string& have : words) found |= have == w;
    if (!found) missing += " " + w;
  }
  return missing.empty() ? "" : where + " lacks" + missing;
}

// Runs `fn` in a forked child; "" if it exited 0, else its message on stdout.
std::string InChild(const std::function<std::string()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) return Errno("pipe");
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    close(fds[0]);
    std::string why = fn();
    (void)!write(fds[1], why.data(), why.size());
    _exit(why.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string why;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) why.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return why.empty() ? "child failed" : why;
}

std::string Mount(const char* source, const char* target, const char* type,
                  unsigned long flags = 0, const char* data = nullptr) {
  mkdir(target, 0755);
  if (mount(source, target, type, flags, data) != 0) {
    return Errno(std::string("mount ") + type + " on " + target);
  }
  return "";
}

// --- nftables over raw netlink -------------------------------------------

class NetlinkBatch {
 public:
  void Begin(uint16_t type, uint16_t flags, uint8_t family,
             uint16_t res_id = 0) {
    start_ = buf_.size();
    nlmsghdr hdr = {};
    hdr.nlmsg_type = type;
    hdr.nlmsg_flags = NLM_F_REQUEST | flags;
    hdr.nlmsg_seq = ++seq_;
    Append(&hdr, sizeof(hdr));
    nfgenmsg gen = {};
    gen.nfgen_family = family;
    gen.version = NFNETLINK_V0;
    gen.res_id = htons(res_id);
    Append(&gen, sizeof(gen));
  }
  void End() { Header()->nlmsg_len = buf_.size() - start_; }
  void Attr(uint16_t type, const void* data, size_t len) {
    nlattr a = {static_cast<uint16_t>(NLA_HDRLEN + len), type};
    Append(&a, sizeof(a));
    Append(data, len);
    Pad();
  }
  void Str(uint16_t type, const std::string& s) {
    Attr(type, s.c_str(), s.size() + 1);
  }
  void Be32(uint16_t type, uint32_t v) {
    uint32_t be = htonl(v);
    Attr(type, &be, sizeof(be));
  }
  size_t Nest(uint16_t type) {
    size_t at = buf_.size();
    nlattr a = {0, static_cast<uint16_t>(type | NLA_F_NESTED)};
    Append(&a, sizeof(a));
    return at;
  }
  void EndNest(size_t at) {
    reinterpret_cast<nlattr*>(&buf_[at])->nla_len = buf_.size() - at;
  }
  const std::vector<char>& data() const { return buf_; }
  uint32_t seq() const { return seq_; }

 private:
  nlmsghdr* Header() { return reinterpret_cast<nlmsghdr*>(&buf_[start_]); }
  void Append(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  void Pad() { buf_.resize(NLA_ALIGN(buf_.size()), 0); }
  std::vector<char> buf_;
  size_t start_ = 0;
  uint32_t seq_ = 0;
};

// What `nft add table ip fcvm_probe; add chain ip fcvm_probe post { type nat
// hook postrouting priority 100; }; add rule ip fcvm_probe post masquerade`
// sends: proves nf_tables, its NAT chain type and the masquerade expression.
std::string NftablesMasquerade() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return Errno("socket(NETLINK_NETFILTER)");
  const uint16_t kNft = NFNL_SUBSYS_NFTABLES << 8;
  const uint16_t kCreate = NLM_F_CREATE | NLM_F_ACK;
  NetlinkBatch b;
  b.Begin(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  b.End();
  b.Begin(kNft | NFT_MSG_NEWTABLE, kCreate, NFPROTO_IPV4);
  b.Str(NFTA_TABLE_NAME, "fcvm_probe");
  b.End();
  b.Begin(kNft | NFT_MSG_NEWCHAIN, kCreate, NFPROTO_IPV4);
  b.Str(NFTA_CHAIN_TABLE, "fcvm_probe");
  b.Str(NFTA_CHAIN_NAME, "post");
  size_t hook = b.Nest(NFTA_CHAIN_HOOK);
  b.Be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING);
  b.Be32(NFTA_HOOK_PRIORITY, 100);
  b.EndNest(hook);
  b.Str(NFTA_CHAIN_TYPE, "nat");
  b.End();
  b.Begin(kNft | NFT_MSG_NEWRULE, kCreate | NLM_F_APPEND, NFPROTO_IPV4);
  b.Str(NFTA_RULE_TABLE, "fcvm_probe");
  b.Str(NFTA_RULE_CHAIN, "post");
  size_t exprs = b.Nest(NFTA_RULE_EXPRESSIONS);
  size_t elem = b.Nest(NFTA_LIST_ELEM);
  b.Str(NFTA_EXPR_NAME, "masq");
  b.EndNest(elem);
  b.EndNest(exprs);
  b.End();
  b.Begin(NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  b.End();

  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, b.data().data(), b.data().size(), 0,
             reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    close(fd);
    return Errno("sendto nftables batch");
  }
  // One ack per message that asked for one: table, chain, rule.
  int acks = 0;
  std::string why;
  while (acks < 3 && why.empty()) {
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      why = Errno("recv nftables ack");
      break;
    }
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      int error = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
      if (error != 0) {
        why = "nftables message " + std::to_string(h->nlmsg_seq) +
              " rejected: " + std::strerror(-error);
        break;
      }
      ++acks;
    }
  }
  close(fd);
  return why;
}

// --- seccomp -----------------------------------------------------------------

std::string SeccompFilter() {
  return InChild([]() -> std::string {
    // getppid() fails with EPERM; everything else is allowed.
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      return Errno("no_new_privs");
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      return Errno("seccomp(SET_MODE_FILTER)");
    }
    errno = 0;
    if (syscall(__NR_getppid) != -1 || errno != EPERM) {
      return "filter installed but getppid() was not denied";
    }
    return "";
  });
}

std::string OverlayMount() {
  std::string why = Mount("tmpfs", "/ov", "tmpfs");
  if (!why.empty()) return why;
  for (const char* d : {"/ov/lower", "/ov/upper", "/ov/work", "/ov/merged"}) {
    mkdir(d, 0755);
  }
  if (!WriteText("/ov/lower/base", "from-lower")) return "write lower";
  why = Mount("overlay", "/ov/merged", "overlay", 0,
              "lowerdir=/ov/lower,upperdir=/ov/upper,workdir=/ov/work");
  if (!why.empty()) return why;
  if (ReadText("/ov/merged/base") != "from-lower") return "lower file not seen";
  if (!WriteText("/ov/merged/new", "written")) return "write through overlay";
  if (ReadText("/ov/upper/new") != "written")
    return "write did not reach upper";
  return "";
}

// The test attaches a small ext4 image as the first virtio-blk disk; it holds
// /hello with "fcvm-ext4".
std::string Ext4OnVirtioBlk() {
  std::string why = Mount("/dev/vda", "/disk", "ext4", MS_RDONLY);
  if (!why.empty()) return why;
  std::string text = ReadText("/disk/hello");
  return text == "fcvm-ext4\n" ? "" : "unexpected /disk/hello: " + text;
}

std::string Namespaces() {
  return InChild([]() -> std::string {
    int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    if (unshare(flags) != 0)
      return Errno("unshare(user|mnt|pid|net|ipc|uts|cgroup)");
    return "";
  });
}

std::string EventSyscalls() {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int ev = eventfd(0, EFD_CLOEXEC);
  int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  int sf = signalfd(-1, &mask, SFD_CLOEXEC);
  int in = inotify_init1(IN_CLOEXEC);
  std::string why;
  if (ep < 0) why += " epoll";
  if (ev < 0) why += " eventfd";
  if (tf < 0) why += " timerfd";
  if (sf < 0) why += " signalfd";
  if (in < 0) why += " inotify";
  for (int fd : {ep, ev, tf, sf, in}) {
    if (fd >= 0) close(fd);
  }
  return why.empty() ? "" : "failed:" + why;
}

// The value of `key=` on the kernel command line, or "".
std::string KernelArg(const std::string& key) {
  std::istringstream in(ReadText("/proc/cmdline"));
  for (std::string word; in >> word;) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

// The host passes fcvm.vsock_cid=N when it attached a vsock device (it needs
// /dev/vhost-vsock); then the guest must see that CID. Without a device only
// the socket family can be checked.
std::string Vsock(std::string* note) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket(AF_VSOCK)");
  close(fd);
  std::string want = KernelArg("fcvm.vsock_cid");
  if (want.empty()) {
    *note = " (no vsock device attached: socket family only)";
    return "";
  }
  unsigned int cid = 0;
  int dev = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
  if (dev < 0) return Errno("open /dev/vsock");
  int rc = ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
  close(dev);
  if (rc != 0) return Errno("IOCTL_VM_SOCKETS_GET_LOCAL_CID");
  return std::to_string(cid) == want
             ? ""
             : "local CID is " + std::to_string(cid) + ", want " + want;
}

std::string IpAutoconfig() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket(AF_INET)");
  ifreq req = {};
  std::strncpy(req.ifr_name, "eth0", IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFADDR, &req);
  close(fd);
  if (rc != 0) return Errno("SIOCGIFADDR eth0");
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&req.ifr_addr)->sin_addr,
            text, sizeof(text));
  // The address boot_test.cc puts in ip= (link-local: it never leaves QEMU).
  return std::string(text) == "169.254.77.2" ? ""
                                             : std::string("eth0 has ") + text;
}

}  // namespace

int main() {
  // stdout is /dev/console; make each line reach it at once.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("FCVM-PROBE-START\n");
  Check("mount-proc", [] { return Mount("proc", "/proc", "proc"); });
  {
    std::string version = ReadText("/proc/version");
    if (!version.empty() && version.back() == '\n') version.pop_back();
    std::printf("FCVM-PROBE-VERSION %s\n", version.c_str());
  }
  Check("mount-sysfs", [] { return Mount("sysfs", "/sys", "sysfs"); });
  Check("mount-devtmpfs", [] { return Mount("devtmpfs", "/dev", "devtmpfs"); });
  Check("filesystems", [] {
    return MissingWords(ReadText("/proc/filesystems"),
                        {"ext4", "overlay", "tmpfs", "squashfs", "fuse",
                         "cgroup2", "proc", "sysfs", "devtmpfs"},
                        "/proc/filesystems");
  });
  Check("cgroup2-controllers", [] {
    std::string why = Mount("cgroup2", "/sys/fs/cgroup", "cgroup2");
    if (!why.empty()) return why;
    return MissingWords(ReadText("/sys/fs/cgroup/cgroup.controllers"),
                        {"cpuset", "cpu", "io", "memory", "pids"},
                        "cgroup.controllers");
  });
  Check("overlayfs", OverlayMount);
  Check("ext4-virtio-blk", Ext4OnVirtioBlk);
  Check("namespaces", Namespaces);
  Check("seccomp-filter", SeccompFilter);
  Check("nftables-nat-masquerade", NftablesMasquerade);
  Check("event-syscalls", EventSyscalls);
  std::string vsock_note;
  Check("vsock", [&] { return Vsock(&vsock_note); });
  if (!vsock_note.empty())
    std::printf("FCVM-PROBE-NOTE vsock%s\n", vsock_note.c_str());
  Check("virtio-rng", [] {
    std::string current = ReadText("/sys/class/misc/hw_random/rng_current");
    return current.rfind("virtio_rng", 0) == 0
               ? ""
               : "rng_current is '" + current + "'";
  });
  Check("ip-autoconfig", IpAutoconfig);
  Check("ikconfig", [] {
    struct stat st;
    return stat("/proc/config.gz", &st) == 0 ? ""
                                             : Errno("stat /proc/config.gz");
  });
  std::printf("FCVM-PROBE-DONE passed=%d failed=%d\n", g_passed, g_failed);
  std::fflush(stdout);
  sync();
  // A reset ends the VM under QEMU -no-reboot (and under Firecracker).
  reboot(RB_AUTOBOOT);
  return 1;
}
