// The whole HttpHandler over memory:, with an arbitrary method, target, headers and
// body. Input: one byte choosing the bearer token (fuzz_env.h), then
//   METHOD SP TARGET LF (NAME ":" VALUE LF)* LF BODY
// Every answer must be a well-formed status with a JSON error body, and another
// tenant's session must never change.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fuzz/fuzz_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessionctx;
  if (size < 1) return 0;
  const int token = data[0];
  absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  HttpRequest req;
  const size_t end_of_head = text.find("\n\n");
  absl::string_view head = text.substr(0, end_of_head);
  if (end_of_head != absl::string_view::npos) req.body = std::string(text.substr(end_of_head + 2));
  bool first = true;
  for (absl::string_view line : absl::StrSplit(head, '\n')) {
    if (first) {
      first = false;
      const size_t sp = line.find(' ');
      req.method = std::string(line.substr(0, sp));
      if (sp != absl::string_view::npos) req.target = std::string(line.substr(sp + 1));
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    req.headers.emplace_back(std::string(line.substr(0, colon)),
                             std::string(absl::StripLeadingAsciiWhitespace(line.substr(colon + 1))));
  }
  if (!fuzz::Token(token).empty()) {
    req.headers.emplace_back("Authorization", "Bearer " + fuzz::Token(token));
  }
  fuzz::Env env;
  const HttpResponse res = env.handler->Handle(req);
  env.CheckInvariants(res);
  return 0;
}
