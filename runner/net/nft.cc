#include "runner/net/nft.h"

#include <nftables/libnftables.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace fcvm::runner::net {
namespace {

struct CtxDeleter {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};

// Runs `commands` as one transaction; returns nft's output.
[[nodiscard]] absl::StatusOr<std::string> Nft(const std::string& commands) {
  std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return absl::InternalError("nftables: nft_ctx_new failed");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), commands.c_str()) != 0) {
    std::string error = nft_ctx_get_error_buffer(ctx.get());
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return absl::FailedPreconditionError(
        absl::StrCat("nftables: ", error.empty() ? "failed" : error,
                     "\n  commands: ", commands));
  }
  return std::string(nft_ctx_get_output_buffer(ctx.get()));
}

}  // namespace

std::string VmTableName(const std::string& vm_id) {
  return absl::StrCat("fcvm-", vm_id);
}

std::string CreateTableCommands(const VmRules& rules) {
  const std::string& t = rules.table;
  // `create` (not `add`): an existing table of this name is an error.
  std::string c = absl::StrCat(
      "create table ip ", t, "\n", "add chain ip ", t,
      " prerouting { type nat hook prerouting priority dstnat; }\n",
      "add chain ip ", t, " output { type nat hook output priority -100; }\n",
      "add chain ip ", t,
      " postrouting { type nat hook postrouting priority srcnat; }\n");
  for (const PublishedPort& port : rules.ports) {
    const std::string proto = port.protocol().empty() ? "tcp" : port.protocol();
    const std::string match = absl::StrCat(
        "fib daddr type local ", proto, " dport ", port.host_port(),
        " dnat to ", rules.guest_ip, ":", port.guest_port(), "\n");
    absl::StrAppend(&c, "add rule ip ", t, " prerouting ", match);
    absl::StrAppend(&c, "add rule ip ", t, " output ", match);
  }
  absl::StrAppend(&c, "add rule ip ", t, " postrouting ip saddr ", rules.subnet,
                  " oifname != \"", rules.tap, "\" masquerade\n");
  absl::StrAppend(&c, "add rule ip ", t, " postrouting oifname \"", rules.tap,
                  "\" ip saddr 127.0.0.0/8 masquerade\n");
  return c;
}

std::string DeleteTableCommands(const std::string& table) {
  return absl::StrCat("add table ip ", table, "\ndelete table ip ", table,
                      "\n");
}

[[nodiscard]] absl::Status RunNft(const std::string& commands) {
  return Nft(commands).status();
}

[[nodiscard]] absl::Status CreateVmTable(const VmRules& rules) {
  return RunNft(CreateTableCommands(rules));
}

[[nodiscard]] absl::Status DeleteVmTable(const std::string& table) {
  return RunNft(DeleteTableCommands(table));
}

[[nodiscard]] absl::Status CheckNftables() {
  std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return absl::InternalError("nftables: nft_ctx_new failed");
  nft_ctx_set_dry_run(ctx.get(), true);
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), "add table ip fcvm-preflight\n") !=
      0) {
    std::string error = nft_ctx_get_error_buffer(ctx.get());
    return absl::PermissionDeniedError(
        absl::StrCat("nftables: ", error.substr(0, error.find('\n'))));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::string> ListTable(const std::string& table) {
  return Nft(absl::StrCat("list table ip ", table));
}

}  // namespace fcvm::runner::net
