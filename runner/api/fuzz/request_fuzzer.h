#ifndef FCVM_RUNNER_API_FUZZ_REQUEST_FUZZER_H_
#define FCVM_RUNNER_API_FUZZ_REQUEST_FUZZER_H_

// The promises of `fcvm api`'s request parsers, checked on any bytes a
// client can send: the fuzz target (LLVMFuzzerTestOneInput, in
// request_fuzzer.cc) aborts on a broken one; corpus_test reports it.

#include <string>

#include "absl/strings/string_view.h"

namespace fcvm::runner::api {

// "" if every promise holds on `input`, else the one broken:
// - ParseRequestEnvelope accepts exactly one well-formed message envelope
//   (re-enveloping its payload gives `input` back) and refuses anything
//   else with InvalidArgument;
// - an EnvelopeReader finds the same envelopes and error whether the
//   bytes come at once or in chunks (sizes drawn from the input), each
//   envelope re-encodes to the bytes it consumed, and it buffers no more
//   than one envelope's worth;
// - the JSON of the input (and of an envelope's payload) either fails to
//   parse or parses into every request message the API reads, and prints
//   back to JSON that parses into an equal message.
std::string BrokenRequestPromise(absl::string_view input);

// What ParseRequestEnvelope and an EnvelopeReader make of `input` at once:
// "request: <payload bytes>" or "request error: <message>", then
// "; stream: " and "msg <n>", "end <n>", "partial" or "error: ..." joined
// by ", ".
std::string DescribeEnvelopes(absl::string_view input);

}  // namespace fcvm::runner::api

#endif  // FCVM_RUNNER_API_FUZZ_REQUEST_FUZZER_H_
