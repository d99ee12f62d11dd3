#include "base/status.h"

#include <cerrno>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fcvm {
namespace {

using ::testing::HasSubstr;

TEST(ErrnoStatusTest, MapsCodeAndMessage) {
  absl::Status status = ErrnoStatus(ENOENT, "open /run/fcvm/web.sock");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            "open /run/fcvm/web.sock: No such file or directory");
}

TEST(ErrnoStatusTest, PermissionAndExistence) {
  EXPECT_EQ(ErrnoStatus(EACCES, "x").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EEXIST, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EINVAL, "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ErrnoStatusTest, ReadsErrno) {
  errno = EBUSY;
  absl::Status status = ErrnoStatus("umount /mnt");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "umount /mnt: Device or resource busy");
}

TEST(AnnotateTest, PrefixesMessageKeepsCodeAndPayload) {
  absl::Status base = absl::NotFoundError("open vmstate: No such file");
  base.SetPayload("fcvm/test", absl::Cord("p"));
  absl::Status annotated = Annotate(base, "loading snapshot 'web'");
  EXPECT_EQ(annotated.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(annotated.message(),
            "loading snapshot 'web': open vmstate: No such file");
  ASSERT_TRUE(annotated.GetPayload("fcvm/test").has_value());
  EXPECT_EQ(*annotated.GetPayload("fcvm/test"), "p");
}

TEST(AnnotateTest, OkStaysOk) {
  EXPECT_TRUE(Annotate(absl::OkStatus(), "context").ok());
}

TEST(AnnotateTest, StatusOrValuePassesThrough) {
  absl::StatusOr<int> value = Annotate(absl::StatusOr<int>(7), "ctx");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 7);
  absl::StatusOr<int> error =
      Annotate(absl::StatusOr<int>(absl::InternalError("boom")), "ctx");
  EXPECT_EQ(error.status(), absl::InternalError("ctx: boom"));
}

[[nodiscard]] absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("bad") : absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<int>> MakeInt(bool fail,
                                                           int value) {
  if (fail) return absl::OutOfRangeError("too big");
  return std::make_unique<int>(value);
}

[[nodiscard]] absl::Status UsesReturnIfError(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  ++*reached;
  return absl::OkStatus();
}

TEST(ReturnIfErrorTest, ReturnsErrorAndSkipsRest) {
  int reached = 0;
  EXPECT_EQ(UsesReturnIfError(true, &reached),
            absl::InvalidArgumentError("bad"));
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(UsesReturnIfError(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

[[nodiscard]] absl::Status ReturnIfErrorOnStatusOr(bool fail) {
  RETURN_IF_ERROR(MakeInt(fail, 1));
  return absl::OkStatus();
}

TEST(ReturnIfErrorTest, AcceptsStatusOr) {
  EXPECT_EQ(ReturnIfErrorOnStatusOr(true), absl::OutOfRangeError("too big"));
  EXPECT_TRUE(ReturnIfErrorOnStatusOr(false).ok());
}

[[nodiscard]] absl::StatusOr<int> Doubled(bool fail) {
  // Move-only values work, and declarations are allowed on the left.
  ASSIGN_OR_RETURN(std::unique_ptr<int> value, MakeInt(fail, 21));
  return *value * 2;
}

TEST(AssignOrReturnTest, AssignsOrReturns) {
  EXPECT_EQ(*Doubled(false), 42);
  EXPECT_EQ(Doubled(true).status(), absl::OutOfRangeError("too big"));
}

[[nodiscard]] absl::StatusOr<int> TwoInOneScope() {
  ASSIGN_OR_RETURN(auto a, MakeInt(false, 1));
  ASSIGN_OR_RETURN(auto b, MakeInt(false, 2));
  int sum = *a + *b;
  ASSIGN_OR_RETURN(sum, absl::StatusOr<int>(sum + 10));
  return sum;
}

TEST(AssignOrReturnTest, SeveralInOneScopeAndExistingVariable) {
  EXPECT_EQ(*TwoInOneScope(), 13);
}

[[nodiscard]] absl::Status WithContext() {
  RETURN_IF_ERROR(Annotate(FailIf(true), "parsing plan"));
  return absl::OkStatus();
}

TEST(ReturnIfErrorTest, WithAnnotate) {
  EXPECT_THAT(std::string(WithContext().message()),
              HasSubstr("parsing plan: bad"));
}

}  // namespace
}  // namespace fcvm
