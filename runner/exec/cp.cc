#include "runner/exec/cp.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/eintr.h"
#include "base/status.h"
#include "channel/frame.h"
#include "runner/exec/copy.h"

namespace fcvm::runner::exec {
namespace {

// What the agent's copy wrote on STDERR is kept (for the error message)
// up to this much; the rest is credited and dropped.
constexpr size_t kMaxErrorBytes = 16 * 1024;

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string Basename(const std::string& path) {
  const std::string stripped = StripTrailingSlashes(path);
  const size_t slash = stripped.rfind('/');
  return slash == std::string::npos ? stripped : stripped.substr(slash + 1);
}

std::string Dirname(const std::string& path) {
  const std::string stripped = StripTrailingSlashes(path);
  const size_t slash = stripped.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : stripped.substr(0, slash);
}

// A host path's own name, "." and ".." resolved (`fcvm cp . web:/srv`).
[[nodiscard]] absl::StatusOr<std::string> HostName(const std::string& path) {
  std::string name = Basename(path);
  if (name == "." || name == ".." || name.empty()) {
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) == nullptr) return ErrnoStatus(path);
    name = Basename(resolved);
  }
  if (name == "/" || name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("copying ", path, ": name a directory under /, not /"));
  }
  return name;
}

// Output of a copy session: its STDOUT for whoever reads it, its STDERR
// kept for the error message.
class Output : public ByteSource {
 public:
  explicit Output(Session& session) : session_(session) {}

  absl::StatusOr<absl::string_view> Read() override {
    // libarchive is done with the previous chunk: it may come again.
    session_.Consumed(chunk_.size());
    chunk_.clear();
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<channel::Data> data,
                       session_.NextOutput());
      if (!data.has_value()) return absl::string_view();
      if (data->stream() == channel::STDOUT) {
        chunk_ = std::move(*data->mutable_data());
        return absl::string_view(chunk_);
      }
      KeepError(data->data());
    }
  }

  // Reads to the session's end, STDOUT dropped (the tar's padding after
  // its end).
  [[nodiscard]] absl::Status Drain() {
    for (;;) {
      ASSIGN_OR_RETURN(absl::string_view bytes, Read());
      if (bytes.empty()) return absl::OkStatus();
    }
  }

  void KeepError(const std::string& bytes) {
    if (errors_.size() < kMaxErrorBytes) {
      errors_.append(bytes, 0, kMaxErrorBytes - errors_.size());
    }
    session_.Consumed(bytes.size());
  }

  const std::string& errors() const { return errors_; }

 private:
  Session& session_;
  std::string chunk_;
  std::string errors_;
};

class Input : public ByteSink {
 public:
  explicit Input(Session& session) : session_(session) {}
  absl::Status Write(absl::string_view bytes) override {
    return session_.WriteStdin(bytes);
  }

 private:
  Session& session_;
};

// The end of a copy session: the agent's failure (its words), else
// `local` (what went wrong here, if anything).
[[nodiscard]] absl::Status Finish(Session& session, Output& output,
                                  const std::string& where,
                                  const absl::Status& local) {
  if (!local.ok() && !session.ended()) return local;  // Ours: Close kills it.
  RETURN_IF_ERROR(output.Drain());
  ASSIGN_OR_RETURN(channel::Exit exit, session.WaitExit());
  if (exit.code() != 0) {
    std::string said(absl::StripAsciiWhitespace(output.errors()));
    if (said.empty()) said = exit.message();
    if (said.empty()) said = absl::StrCat("the copy exited with ", exit.code());
    return absl::AbortedError(absl::StrCat(where, ": ", said));
  }
  return local;
}

[[nodiscard]] absl::StatusOr<channel::Stated> StatInVm(
    HubClient& client, const std::string& path) {
  channel::Open open;
  open.mutable_stat()->set_path(path);
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session, client.Open(open));
  return session->WaitStated();
}

}  // namespace

absl::StatusOr<CpArgs> ParseCpArgs(const std::string& src,
                                   const std::string& dst) {
  struct Side {
    std::string vm, path;
  };
  const auto parse = [](const std::string& arg) {
    Side side{"", arg};
    if (arg.empty() || arg[0] == '/' || arg[0] == '.') return side;
    const size_t colon = arg.find(':');
    if (colon == std::string::npos) return side;
    side.vm = arg.substr(0, colon);
    side.path = arg.substr(colon + 1);
    if (side.path.empty() || side.path[0] != '/') {
      side.path = "/" + side.path;  // Podman: relative to the root.
    }
    return side;
  };
  const Side from = parse(src), to = parse(dst);
  if (src.empty() || dst.empty()) {
    return absl::InvalidArgumentError("cp SRC DST: both must be given");
  }
  if (!from.vm.empty() && !to.vm.empty()) {
    return absl::InvalidArgumentError(
        "cp: copying between two VMs is not supported: give NAME:PATH on "
        "exactly one side (cp NAME:PATH HOST_PATH, cp HOST_PATH NAME:PATH)");
  }
  if (from.vm.empty() && to.vm.empty()) {
    return absl::InvalidArgumentError(
        "cp: one side must be NAME:PATH, a path in VM NAME's container "
        "(cp NAME:PATH HOST_PATH, cp HOST_PATH NAME:PATH)");
  }
  CpArgs args;
  args.to_vm = !to.vm.empty();
  const Side& vm = args.to_vm ? to : from;
  args.vm = vm.vm;
  args.vm_path = vm.path;
  args.host_path = args.to_vm ? from.path : to.path;
  return args;
}

absl::Status CopyFromVm(HubClient& client, const std::string& vm_path,
                        const std::string& host_dst, int stdout_fd) {
  const std::string where = absl::StrCat(client.vm_name(), ":", vm_path);
  const std::string top = Basename(vm_path);
  if (top == "/" || top.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "copying ", where, ": name a directory under /, not / itself"));
  }
  std::string dest_dir = host_dst, rename;
  if (host_dst != "-") {
    struct stat st;
    const bool exists = stat(host_dst.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) return ErrnoStatus(host_dst);
    if (!exists || !S_ISDIR(st.st_mode)) {
      if (!exists && absl::EndsWith(host_dst, "/")) {
        return absl::NotFoundError(
            absl::StrCat(host_dst, ": no such directory"));
      }
      dest_dir = Dirname(host_dst);
      rename = Basename(host_dst);
      struct stat parent;
      if (stat(dest_dir.c_str(), &parent) != 0 || !S_ISDIR(parent.st_mode)) {
        return absl::NotFoundError(absl::StrCat(
            "copying to ", host_dst, ": no such directory ", dest_dir));
      }
    }
  }
  channel::Open open;
  open.mutable_copy_out()->set_path(vm_path);
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session, client.Open(open));
  Output output(*session);
  absl::Status local;
  if (host_dst == "-") {
    for (;;) {
      absl::StatusOr<absl::string_view> bytes = output.Read();
      if (!bytes.ok() || bytes->empty()) {
        local = bytes.status();
        break;
      }
      local = WriteAll(stdout_fd, *bytes, "stdout");
      if (!local.ok()) break;
    }
  } else {
    local = ExtractTar(output, dest_dir, top, rename);
  }
  return Finish(*session, output, where, local);
}

absl::Status CopyToVm(HubClient& client, const std::string& host_src,
                      const std::string& vm_dst, int stdin_fd) {
  const std::string where = absl::StrCat(client.vm_name(), ":", vm_dst);
  ASSIGN_OR_RETURN(channel::Stated dst, StatInVm(client, vm_dst));
  std::string into = vm_dst, top;
  bool src_is_dir = false;
  if (host_src == "-") {
    if (!dst.exists() || !dst.directory()) {
      return absl::FailedPreconditionError(absl::StrCat(
          where,
          ": no such directory in the container (a tar on stdin is "
          "unpacked into a directory)"));
    }
  } else {
    struct stat st;
    if (lstat(host_src.c_str(), &st) != 0) return ErrnoStatus(host_src);
    src_is_dir = S_ISDIR(st.st_mode);
    if (dst.exists() && dst.directory()) {
      ASSIGN_OR_RETURN(top, HostName(host_src));
    } else {
      if (!dst.exists() && absl::EndsWith(vm_dst, "/")) {
        return absl::NotFoundError(
            absl::StrCat(where, ": no such directory in the container"));
      }
      if (dst.exists() && src_is_dir) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot copy the directory ", host_src, " over the file ", where));
      }
      into = Dirname(vm_dst);
      top = Basename(vm_dst);
      ASSIGN_OR_RETURN(channel::Stated parent, StatInVm(client, into));
      if (!parent.exists() || !parent.directory()) {
        return absl::NotFoundError(
            absl::StrCat("copying to ", where, ": no such directory ",
                         client.vm_name(), ":", into, " in the container"));
      }
    }
  }
  channel::Open open;
  open.mutable_copy_in()->set_path(into);
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session, client.Open(open));
  Output output(*session);
  Input input(*session);
  absl::Status local;
  if (host_src == "-") {
    std::string buffer(channel::kMaxDataBytes, '\0');
    for (;;) {
      const ssize_t n = RetryEintr(
          [&] { return read(stdin_fd, buffer.data(), buffer.size()); });
      if (n < 0) local = ErrnoStatus("reading stdin");
      if (n <= 0) break;
      local = input.Write(absl::string_view(buffer.data(), n));
      if (!local.ok()) break;
    }
  } else {
    local = WriteTar(host_src, top, input);
  }
  if (local.ok()) local = session->CloseStdin();
  return Finish(*session, output, where, local);
}

}  // namespace fcvm::runner::exec
