// Proves the offline proto toolchain: protoc from Debian generates C++ that
// compiles and links against Debian's libprotobuf, well-known types resolve,
// and the JSON mapping (our wire format) round-trips and rejects unknown
// fields.
#include <string>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "third_party/protobuf/toolchain_test.pb.h"

namespace fcvm {
namespace {

using ::fcvm::third_party::protobuf::Sample;
using ::google::protobuf::util::JsonParseOptions;
using ::google::protobuf::util::JsonStringToMessage;
using ::google::protobuf::util::MessageDifferencer;
using ::google::protobuf::util::MessageToJsonString;

Sample MakeSample() {
  Sample sample;
  sample.set_name("web");
  sample.set_memory_bytes(512ull << 20);
  sample.set_kind(Sample::KIND_VM);
  Sample::Port* port = sample.add_ports();
  port->set_host(8080);
  port->set_guest(80);
  (*sample.mutable_env())["A"] = "1";
  sample.set_image("nginx");
  sample.mutable_created()->set_seconds(1700000000);
  sample.mutable_boot_time()->set_nanos(250000000);
  return sample;
}

TEST(ProtobufToolchainTest, BinaryRoundTrip) {
  Sample sample = MakeSample();
  std::string wire;
  ASSERT_TRUE(sample.SerializeToString(&wire));
  Sample parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_TRUE(MessageDifferencer::Equals(sample, parsed));
}

TEST(ProtobufToolchainTest, JsonMappingIsExact) {
  std::string json;
  ASSERT_TRUE(MessageToJsonString(MakeSample(), &json).ok());
  EXPECT_EQ(
      json,
      "{\"name\":\"web\",\"memoryBytes\":\"536870912\",\"kind\":\"KIND_VM\","
      "\"ports\":[{\"host\":8080,\"guest\":80}],\"env\":{\"A\":\"1\"},"
      "\"image\":\"nginx\",\"created\":\"2023-11-14T22:13:20Z\","
      "\"bootTime\":\"0.250s\"}");
  Sample parsed;
  ASSERT_TRUE(JsonStringToMessage(json, &parsed).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(MakeSample(), parsed));
}

TEST(ProtobufToolchainTest, JsonRejectsUnknownFields) {
  Sample parsed;
  auto status = JsonStringToMessage("{\"name\":\"web\",\"nmae\":\"typo\"}",
                                    &parsed, JsonParseOptions());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.ToString().find("nmae"), std::string::npos) << status;
}

}  // namespace
}  // namespace fcvm
