// Our copies of E2B's process and filesystem messages against the ones the
// published SDK (e2b 2.51.0, tests/api/sdk) is built with: its bundle holds
// each .proto's FileDescriptorProto (protobuf-es `fileDesc("<base64>")`).
// Every message and enum we define must match the SDK's field for field
// (name, number, label, type, message type, oneof, proto3 optional), so the
// JSON the SDK writes is the JSON we read, and the reverse.

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "runner/api/e2b/filesystem.pb.h"
#include "runner/api/e2b/process.pb.h"

namespace {

using google::protobuf::DescriptorProto;
using google::protobuf::EnumDescriptorProto;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorProto;

std::string SdkFile(const std::string& relative) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/e2b_sdk/", relative);
}

// The SDK's FileDescriptorProtos by file name ("process/process.proto").
std::map<std::string, FileDescriptorProto> SdkDescriptors() {
  std::map<std::string, FileDescriptorProto> files;
  auto bundle = fcvm::ReadFile(SdkFile("e2b/dist/index.mjs"));
  EXPECT_TRUE(bundle.ok()) << bundle.status()
                           << " (tools/bootstrap.sh installs the SDK)";
  if (!bundle.ok()) return files;
  re2::StringPiece input(*bundle);
  std::string encoded;
  while (RE2::FindAndConsume(&input, R"re(fileDesc\("([A-Za-z0-9+/=]+)")re",
                             &encoded)) {
    std::string bytes;
    if (!absl::Base64Unescape(encoded, &bytes)) continue;
    FileDescriptorProto file;
    if (file.ParseFromString(bytes)) files[file.name()] = file;
  }
  return files;
}

// The element of `list` (messages, enums) named `name`, or nullptr.
template <typename List>
const typename List::value_type* FindByName(const List& list,
                                            const std::string& name) {
  for (const auto& element : list) {
    if (element.name() == name) return &element;
  }
  return nullptr;
}

std::string Describe(const FieldDescriptorProto& f,
                     const DescriptorProto& owner) {
  std::string oneof;
  if (f.has_oneof_index() && f.oneof_index() < owner.oneof_decl_size()) {
    oneof = owner.oneof_decl(f.oneof_index()).name();
  }
  return absl::StrCat(f.name(), " = ", f.number(), " label ", f.label(),
                      " type ", f.type(), " ", f.type_name(), " oneof '", oneof,
                      "' optional ", f.proto3_optional());
}

void CompareMessages(const std::string& scope, const DescriptorProto& ours,
                     const DescriptorProto& theirs,
                     std::vector<std::string>* diffs) {
  const std::string name = absl::StrCat(scope, ours.name());
  std::map<int, std::string> their_fields;
  for (const auto& f : theirs.field()) {
    their_fields[f.number()] = Describe(f, theirs);
  }
  std::map<int, std::string> our_fields;
  for (const auto& f : ours.field()) our_fields[f.number()] = Describe(f, ours);
  if (our_fields != their_fields) {
    std::vector<std::string> a, b;
    for (const auto& [n, d] : our_fields) a.push_back(d);
    for (const auto& [n, d] : their_fields) b.push_back(d);
    diffs->push_back(absl::StrCat(name, ": ours {", absl::StrJoin(a, "; "),
                                  "} vs the SDK's {", absl::StrJoin(b, "; "),
                                  "}"));
  }
  for (const auto& nested : ours.nested_type()) {
    if (nested.options().map_entry()) continue;  // Checked as the field.
    const DescriptorProto* match =
        FindByName(theirs.nested_type(), nested.name());
    if (match == nullptr) {
      diffs->push_back(
          absl::StrCat(name, ".", nested.name(), ": not in the SDK"));
      continue;
    }
    CompareMessages(name + ".", nested, *match, diffs);
  }
}

void CompareEnums(const EnumDescriptorProto& ours,
                  const EnumDescriptorProto& theirs,
                  std::vector<std::string>* diffs) {
  std::map<std::string, int> a, b;
  for (const auto& v : ours.value()) a[v.name()] = v.number();
  for (const auto& v : theirs.value()) b[v.name()] = v.number();
  if (a != b) diffs->push_back(absl::StrCat(ours.name(), ": values differ"));
}

void CompareFiles(const google::protobuf::FileDescriptor* ours_descriptor,
                  const std::string& sdk_name) {
  const auto sdk = SdkDescriptors();
  const auto it = sdk.find(sdk_name);
  ASSERT_NE(it, sdk.end()) << sdk_name << " is not in the SDK's bundle";
  const FileDescriptorProto& theirs = it->second;
  FileDescriptorProto ours;
  ours_descriptor->CopyTo(&ours);
  EXPECT_EQ(ours.package(), theirs.package());
  std::vector<std::string> diffs;
  for (const auto& message : ours.message_type()) {
    if (const auto* match = FindByName(theirs.message_type(), message.name())) {
      CompareMessages("", message, *match, &diffs);
    } else {
      diffs.push_back(absl::StrCat(message.name(), ": not in the SDK"));
    }
  }
  for (const auto& e : ours.enum_type()) {
    if (const auto* match = FindByName(theirs.enum_type(), e.name())) {
      CompareEnums(e, *match, &diffs);
    } else {
      diffs.push_back(absl::StrCat(e.name(), ": not in the SDK"));
    }
  }
  std::vector<std::string> not_ours;
  for (const auto& t : theirs.message_type()) {
    if (FindByName(ours.message_type(), t.name()) == nullptr) {
      not_ours.push_back(t.name());
    }
  }
  EXPECT_TRUE(diffs.empty()) << absl::StrJoin(diffs, "\n");
  // Messages of methods `fcvm api` does not serve (yet): for the log.
  std::cout << sdk_name << ": " << ours.message_type_size()
            << " messages match; the SDK's others: "
            << absl::StrJoin(not_ours, ", ") << "\n";
}

TEST(SdkDescriptors, TheSdkIsThePinnedOne) {
  auto package = fcvm::ReadFile(SdkFile("e2b/package.json"));
  ASSERT_TRUE(package.ok()) << package.status();
  EXPECT_TRUE(RE2::PartialMatch(*package, R"re("version":\s*"2\.51\.0")re"))
      << "tests/api/sdk/package.json pins e2b 2.51.0; installed: " << *package;
}

TEST(SdkDescriptors, ProcessMessagesMatchTheSdks) {
  CompareFiles(process::StartRequest::descriptor()->file(),
               "process/process.proto");
}

TEST(SdkDescriptors, FilesystemMessagesMatchTheSdks) {
  CompareFiles(filesystem::StatRequest::descriptor()->file(),
               "filesystem/filesystem.proto");
}

}  // namespace
