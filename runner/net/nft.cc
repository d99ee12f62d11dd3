#include "runner/net/nft.h"

#include <nftables/libnftables.h>

#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fcvm::runner::net {
namespace {

constexpr char kCommentPrefix[] = "fcvm:";

struct CtxDeleter {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};

// Runs `commands`; returns nft's output. `json`: list output as JSON, with
// rule handles.
absl::StatusOr<std::string> Nft(const std::string& commands, bool json) {
  std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return absl::InternalError("nftables: nft_ctx_new failed");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (json) {
    nft_ctx_output_set_flags(ctx.get(),
                             NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  }
  if (nft_run_cmd_from_buffer(ctx.get(), commands.c_str()) != 0) {
    std::string error = nft_ctx_get_error_buffer(ctx.get());
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return absl::FailedPreconditionError(
        absl::StrCat("nftables: ", error.empty() ? "failed" : error,
                     "\n  commands: ", commands));
  }
  return std::string(nft_ctx_get_output_buffer(ctx.get()));
}

std::string Comment(const std::string& vm) {
  return absl::StrCat("comment \"", kCommentPrefix, vm, "\"");
}

struct RuleRef {
  std::string chain;
  int64_t handle;
  std::string comment;
};

absl::StatusOr<std::vector<RuleRef>> Rules() {
  absl::StatusOr<std::string> json =
      Nft(absl::StrCat("list table ip ", kTable), /*json=*/true);
  if (!json.ok()) {
    // No table: no rules.
    if (absl::StrContains(json.status().message(), "No such file")) {
      return std::vector<RuleRef>();
    }
    return json.status();
  }
  google::protobuf::Struct root;
  if (!google::protobuf::util::JsonStringToMessage(*json, &root).ok()) {
    return absl::DataLossError("nftables: unreadable JSON listing");
  }
  std::vector<RuleRef> rules;
  for (const auto& item : root.fields().at("nftables").list_value().values()) {
    const auto& fields = item.struct_value().fields();
    auto rule = fields.find("rule");
    if (rule == fields.end()) continue;
    const auto& r = rule->second.struct_value().fields();
    auto comment = r.find("comment");
    rules.push_back({r.at("chain").string_value(),
                     static_cast<int64_t>(r.at("handle").number_value()),
                     comment == r.end() ? "" : comment->second.string_value()});
  }
  return rules;
}

}  // namespace

std::string AddRulesCommands(const VmRules& rules) {
  std::string c = absl::StrCat(
      "add table ip ", kTable, "\n", "add chain ip ", kTable,
      " prerouting { type nat hook prerouting priority dstnat; }\n",
      "add chain ip ", kTable,
      " output { type nat hook output priority -100; }\n", "add chain ip ",
      kTable, " postrouting { type nat hook postrouting priority srcnat; }\n");
  for (const agent::PortMapping& port : rules.ports) {
    const std::string proto = port.protocol().empty() ? "tcp" : port.protocol();
    const std::string match =
        absl::StrCat("fib daddr type local ", proto, " dport ",
                     port.host_port(), " dnat to ", rules.guest_ip, ":",
                     port.guest_port(), " ", Comment(rules.vm), "\n");
    absl::StrAppend(&c, "add rule ip ", kTable, " prerouting ", match);
    absl::StrAppend(&c, "add rule ip ", kTable, " output ", match);
  }
  absl::StrAppend(&c, "add rule ip ", kTable, " postrouting ip saddr ",
                  rules.subnet, " oifname != \"", rules.tap, "\" masquerade ",
                  Comment(rules.vm), "\n");
  absl::StrAppend(&c, "add rule ip ", kTable, " postrouting oifname \"",
                  rules.tap, "\" ip saddr 127.0.0.0/8 masquerade ",
                  Comment(rules.vm), "\n");
  return c;
}

absl::Status RunNft(const std::string& commands) {
  return Nft(commands, /*json=*/false).status();
}

absl::Status AddVmRules(const VmRules& rules) {
  return RunNft(AddRulesCommands(rules));
}

absl::Status RemoveVmRules(const std::string& vm) {
  absl::StatusOr<std::vector<RuleRef>> rules = Rules();
  if (!rules.ok()) return rules.status();
  std::string commands;
  for (const RuleRef& rule : *rules) {
    if (rule.comment == absl::StrCat(kCommentPrefix, vm)) {
      absl::StrAppend(&commands, "delete rule ip ", kTable, " ", rule.chain,
                      " handle ", rule.handle, "\n");
    }
  }
  return commands.empty() ? absl::OkStatus() : RunNft(commands);
}

absl::StatusOr<std::vector<std::string>> VmsWithRules() {
  absl::StatusOr<std::vector<RuleRef>> rules = Rules();
  if (!rules.ok()) return rules.status();
  std::set<std::string> vms;
  for (const RuleRef& rule : *rules) {
    if (absl::StartsWith(rule.comment, kCommentPrefix)) {
      vms.insert(rule.comment.substr(sizeof(kCommentPrefix) - 1));
    }
  }
  return std::vector<std::string>(vms.begin(), vms.end());
}

absl::StatusOr<std::string> ListTable() {
  return Nft(absl::StrCat("list table ip ", kTable), /*json=*/false);
}

}  // namespace fcvm::runner::net
