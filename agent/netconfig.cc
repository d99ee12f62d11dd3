#include "agent/netconfig.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/eintr.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace fcvm::agent {
namespace {

// A netlink request under construction: header, fixed part, attributes.
class Message {
 public:
  Message(uint16_t type, uint16_t flags) {
    buffer_.resize(NLMSG_HDRLEN);
    header()->nlmsg_type = type;
    header()->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  }
  template <typename T>
  T* Append(const T& fixed) {
    const size_t at = buffer_.size();
    buffer_.resize(at + NLMSG_ALIGN(sizeof(T)));
    std::memcpy(buffer_.data() + at, &fixed, sizeof(T));
    return reinterpret_cast<T*>(buffer_.data() + at);
  }
  void Attribute(uint16_t type, const void* data, size_t size) {
    const size_t at = buffer_.size();
    buffer_.resize(at + RTA_ALIGN(RTA_LENGTH(size)));
    rtattr attribute = {static_cast<uint16_t>(RTA_LENGTH(size)), type};
    std::memcpy(buffer_.data() + at, &attribute, sizeof(attribute));
    std::memcpy(buffer_.data() + at + RTA_LENGTH(0), data, size);
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }
  std::string& Finish(uint32_t seq) {
    header()->nlmsg_len = buffer_.size();
    header()->nlmsg_seq = seq;
    return buffer_;
  }

 private:
  std::string buffer_;
};

class Netlink {
 public:
  [[nodiscard]] static absl::StatusOr<Netlink> Open() {
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return ErrnoStatus("netlink socket");
    return Netlink(std::move(fd));
  }

  // Sends `message`; calls `each` for every reply message until the ACK
  // (or DONE for a dump). A kernel error comes back as its errno.
  [[nodiscard]] absl::Status Call(
      Message& message, absl::string_view what,
      const std::function<void(const nlmsghdr*)>& each = {}) {
    const std::string& wire = message.Finish(++seq_);
    if (RetryEintr(
            [&] { return send(fd_.get(), wire.data(), wire.size(), 0); }) < 0) {
      return ErrnoStatus(what);
    }
    std::string buffer(65536, '\0');
    for (;;) {
      const ssize_t n = RetryEintr(
          [&] { return recv(fd_.get(), buffer.data(), buffer.size(), 0); });
      if (n < 0) return ErrnoStatus(what);
      int length = static_cast<int>(n);
      for (auto* h = reinterpret_cast<const nlmsghdr*>(buffer.data());
           NLMSG_OK(h, length); h = NLMSG_NEXT(h, length)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_DONE) return absl::OkStatus();
        if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
          if (error->error == 0) return absl::OkStatus();
          return ErrnoStatus(-error->error, what);
        }
        if (each) each(h);
      }
    }
  }

 private:
  explicit Netlink(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

[[nodiscard]] absl::StatusOr<int> IfIndex(const std::string& ifname) {
  const unsigned index = if_nametoindex(ifname.c_str());
  if (index == 0) {
    return ErrnoStatus(absl::StrCat("network interface '", ifname, "'"));
  }
  return static_cast<int>(index);
}

struct Cidr {
  in_addr address;
  int prefix;
};

[[nodiscard]] absl::StatusOr<Cidr> ParseCidr(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  Cidr cidr = {};
  if (parts.size() != 2 ||
      inet_pton(AF_INET, parts[0].c_str(), &cidr.address) != 1 ||
      !absl::SimpleAtoi(parts[1], &cidr.prefix) || cidr.prefix < 0 ||
      cidr.prefix > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an IPv4 address/prefix"));
  }
  return cidr;
}

std::string Ipv4(const void* data) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, data, text, sizeof(text));
  return text;
}

bool IsLinkLocal(const in_addr& address) {
  return (ntohl(address.s_addr) & 0xffff0000u) == 0xa9fe0000u;
}

[[nodiscard]] absl::Status ChangeAddress(Netlink& netlink, uint16_t type,
                                         int index, const Cidr& cidr,
                                         absl::string_view what) {
  Message message(type,
                  type == RTM_NEWADDR ? (NLM_F_CREATE | NLM_F_REPLACE) : 0);
  ifaddrmsg ifa = {};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = cidr.prefix;
  ifa.ifa_index = index;
  message.Append(ifa);
  message.Attribute(IFA_LOCAL, &cidr.address, sizeof(cidr.address));
  message.Attribute(IFA_ADDRESS, &cidr.address, sizeof(cidr.address));
  if (cidr.prefix < 31) {
    in_addr broadcast = cidr.address;
    broadcast.s_addr |= htonl(cidr.prefix == 0 ? ~0u : (~0u >> cidr.prefix));
    message.Attribute(IFA_BROADCAST, &broadcast, sizeof(broadcast));
  }
  return netlink.Call(message, what);
}

// Every IPv4 address on `index`.
[[nodiscard]] absl::StatusOr<std::vector<Cidr>> AddressesOf(Netlink& netlink,
                                                            int index) {
  Message message(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa = {};
  ifa.ifa_family = AF_INET;
  message.Append(ifa);
  std::vector<Cidr> found;
  RETURN_IF_ERROR(
      netlink.Call(message, "listing addresses", [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWADDR) return;
        const auto* reply = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
        if (static_cast<int>(reply->ifa_index) != index) return;
        int length = IFA_PAYLOAD(h);
        for (const rtattr* a = IFA_RTA(reply); RTA_OK(a, length);
             a = RTA_NEXT(a, length)) {
          if (a->rta_type == IFA_LOCAL) {
            Cidr cidr = {};
            std::memcpy(&cidr.address, RTA_DATA(a), sizeof(cidr.address));
            cidr.prefix = reply->ifa_prefixlen;
            found.push_back(cidr);
          }
        }
      }));
  return found;
}

}  // namespace

[[nodiscard]] absl::Status SetLinkUp(const std::string& ifname) {
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  Message message(RTM_NEWLINK, 0);
  ifinfomsg ifi = {};
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  message.Append(ifi);
  return netlink.Call(message, absl::StrCat("bringing ", ifname, " up"));
}

[[nodiscard]] absl::Status SetMacAddress(const std::string& ifname,
                                         const std::string& mac) {
  unsigned char bytes[6];
  if (std::sscanf(mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &bytes[0],
                  &bytes[1], &bytes[2], &bytes[3], &bytes[4], &bytes[5]) != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", mac, "' is not a MAC address"));
  }
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  Message message(RTM_NEWLINK, 0);
  ifinfomsg ifi = {};
  ifi.ifi_index = index;
  message.Append(ifi);
  message.Attribute(IFLA_ADDRESS, bytes, sizeof(bytes));
  return netlink.Call(message,
                      absl::StrCat("setting ", ifname, "'s MAC to ", mac));
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> Ipv4Addresses(
    const std::string& ifname) {
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  ASSIGN_OR_RETURN(std::vector<Cidr> cidrs, AddressesOf(netlink, index));
  std::vector<std::string> out;
  for (const Cidr& cidr : cidrs) {
    out.push_back(absl::StrCat(Ipv4(&cidr.address), "/", cidr.prefix));
  }
  return out;
}

[[nodiscard]] absl::Status ReplaceIpv4Address(const std::string& ifname,
                                              const std::string& ip_cidr) {
  ASSIGN_OR_RETURN(Cidr wanted, ParseCidr(ip_cidr));
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  RETURN_IF_ERROR(
      ChangeAddress(netlink, RTM_NEWADDR, index, wanted,
                    absl::StrCat("adding ", ip_cidr, " to ", ifname)));
  ASSIGN_OR_RETURN(std::vector<Cidr> present, AddressesOf(netlink, index));
  for (const Cidr& cidr : present) {
    if (IsLinkLocal(cidr.address) ||
        (cidr.address.s_addr == wanted.address.s_addr &&
         cidr.prefix == wanted.prefix)) {
      continue;
    }
    const std::string old = absl::StrCat(Ipv4(&cidr.address), "/", cidr.prefix);
    RETURN_IF_ERROR(
        ChangeAddress(netlink, RTM_DELADDR, index, cidr,
                      absl::StrCat("removing ", old, " from ", ifname)));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ReplaceRoute(const std::string& destination_cidr,
                                        const std::string& gateway,
                                        const std::string& ifname) {
  ASSIGN_OR_RETURN(Cidr destination, ParseCidr(destination_cidr));
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  Message message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  rtmsg rtm = {};
  rtm.rtm_family = AF_INET;
  rtm.rtm_dst_len = destination.prefix;
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_protocol = RTPROT_STATIC;
  rtm.rtm_scope = gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm.rtm_type = RTN_UNICAST;
  message.Append(rtm);
  if (destination.prefix > 0) {
    message.Attribute(RTA_DST, &destination.address,
                      sizeof(destination.address));
  }
  if (!gateway.empty()) {
    in_addr via = {};
    if (inet_pton(AF_INET, gateway.c_str(), &via) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("gateway '", gateway, "' is not IPv4"));
    }
    message.Attribute(RTA_GATEWAY, &via, sizeof(via));
  }
  const uint32_t oif = index;
  message.Attribute(RTA_OIF, &oif, sizeof(oif));
  return netlink.Call(
      message,
      absl::StrCat("route to ", destination_cidr,
                   gateway.empty() ? "" : absl::StrCat(" via ", gateway),
                   " dev ", ifname));
}

[[nodiscard]] absl::StatusOr<int> FlushNeighbours(const std::string& ifname) {
  ASSIGN_OR_RETURN(int index, IfIndex(ifname));
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  Message dump(RTM_GETNEIGH, NLM_F_DUMP);
  ndmsg query = {};
  query.ndm_family = AF_INET;
  dump.Append(query);
  std::vector<in_addr> learned;
  RETURN_IF_ERROR(netlink.Call(
      dump, absl::StrCat("listing the neighbours of ", ifname),
      [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWNEIGH) return;
        const auto* reply = static_cast<const ndmsg*>(NLMSG_DATA(h));
        if (reply->ndm_ifindex != index ||
            (reply->ndm_state & (NUD_PERMANENT | NUD_NOARP)) != 0) {
          return;
        }
        int length = RTM_PAYLOAD(h);
        for (const rtattr* a = reinterpret_cast<const rtattr*>(
                 reinterpret_cast<const char*>(reply) +
                 NLMSG_ALIGN(sizeof(ndmsg)));
             RTA_OK(a, length); a = RTA_NEXT(a, length)) {
          if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == sizeof(in_addr)) {
            learned.push_back(*static_cast<const in_addr*>(RTA_DATA(a)));
          }
        }
      }));
  int flushed = 0;
  for (const in_addr& address : learned) {
    Message remove(RTM_DELNEIGH, 0);
    ndmsg entry = {};
    entry.ndm_family = AF_INET;
    entry.ndm_ifindex = index;
    remove.Append(entry);
    remove.Attribute(NDA_DST, &address, sizeof(address));
    // Gone already (it expired meanwhile) is as good as removed.
    absl::Status removed = netlink.Call(
        remove, absl::StrCat("forgetting neighbour ", Ipv4(&address), " of ",
                             ifname));
    if (removed.ok()) {
      ++flushed;
    } else if (!absl::IsNotFound(removed)) {
      return removed;
    }
  }
  return flushed;
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> Ipv4Routes() {
  ASSIGN_OR_RETURN(Netlink netlink, Netlink::Open());
  Message message(RTM_GETROUTE, NLM_F_DUMP);
  rtmsg rtm = {};
  rtm.rtm_family = AF_INET;
  message.Append(rtm);
  std::vector<std::string> routes;
  RETURN_IF_ERROR(
      netlink.Call(message, "listing routes", [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWROUTE) return;
        const auto* reply = static_cast<const rtmsg*>(NLMSG_DATA(h));
        if (reply->rtm_table != RT_TABLE_MAIN) return;
        std::string destination = "0.0.0.0";
        std::string via;
        std::string dev;
        int length = RTM_PAYLOAD(h);
        for (const rtattr* a = RTM_RTA(reply); RTA_OK(a, length);
             a = RTA_NEXT(a, length)) {
          if (a->rta_type == RTA_DST) destination = Ipv4(RTA_DATA(a));
          if (a->rta_type == RTA_GATEWAY) via = Ipv4(RTA_DATA(a));
          if (a->rta_type == RTA_OIF) {
            char name[IF_NAMESIZE] = {};
            if_indextoname(*static_cast<const uint32_t*>(RTA_DATA(a)), name);
            dev = name;
          }
        }
        routes.push_back(absl::StrCat(
            destination, "/", reply->rtm_dst_len,
            via.empty() ? "" : absl::StrCat(" via ", via), " dev ", dev));
      }));
  return routes;
}

}  // namespace fcvm::agent
