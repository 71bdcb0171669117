// The access log's line formats and escaping (the server's side of it is tested over
// a socket in server_limits_test).
#include "apps/access_log.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "sessionctx/session_context.h"

namespace sessionctx::apps {
namespace {

TEST(AccessLog, TextLineIsMethodPathStatusMicros) {
  EXPECT_EQ(FormatAccessLogLine(AccessLogFormat::kText,
                                {"127.0.0.1:5000", "GET", "/healthz", 200, 35, 15}, ""),
            "GET /healthz 200 35us\n");
}

TEST(AccessLog, ControlBytesSpacesAndHighBytesAreEscaped) {
  EXPECT_EQ(EscapeForLog("/a\x1b[31m b\r\n\\\x7f\xc3\xa9"),
            "/a\\x1b[31m\\x20b\\x0d\\x0a\\x5c\\x7f\\xc3\\xa9");
  const std::string line = FormatAccessLogLine(
      AccessLogFormat::kText, {"-", "GET", "/x\x1b\r\nGET /forged 200 1us", 400, 1, 0}, "");
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the path holds";
}

TEST(AccessLog, JsonLineParsesAndCarriesEveryField) {
  const std::string line = FormatAccessLogLine(
      AccessLogFormat::kJson, {"127.0.0.1:5000", "PATCH", "/p\"q\\\x01", 409, 120, 77},
      "2026-11-27T10:00:00.000Z");
  ASSERT_EQ(line.back(), '\n');
  const Json j = Json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["time"], "2026-11-27T10:00:00.000Z");
  EXPECT_EQ(j["remote"], "127.0.0.1:5000");
  EXPECT_EQ(j["method"], "PATCH");
  EXPECT_EQ(j["path"], "/p\"q\\x5c\\x01");
  EXPECT_EQ(j["status"], 409);
  EXPECT_EQ(j["micros"], 120);
  EXPECT_EQ(j["bytes"], 77);
}

TEST(AccessLog, FormatNamesParse) {
  EXPECT_EQ(ParseAccessLogFormat("off"), AccessLogFormat::kOff);
  EXPECT_EQ(ParseAccessLogFormat("text"), AccessLogFormat::kText);
  EXPECT_EQ(ParseAccessLogFormat("json"), AccessLogFormat::kJson);
  EXPECT_EQ(ParseAccessLogFormat("yaml"), std::nullopt);
}

TEST(AccessLog, WritesEveryLineBeforeItIsDestroyed) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    AccessLog log(AccessLogFormat::kText, out);
    for (int i = 0; i < 1000; ++i) log.Write({"-", "GET", "/healthz", 200, i, 15});
  }
  std::rewind(out);
  int lines = 0;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), out) != nullptr) {
    EXPECT_EQ(std::string(buf).rfind("GET /healthz 200 ", 0), 0u) << buf;
    ++lines;
  }
  std::fclose(out);
  EXPECT_EQ(lines, 1000);
}

TEST(AccessLog, OffWritesNothing) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    AccessLog log(AccessLogFormat::kOff, out);
    EXPECT_FALSE(log.enabled());
    log.Write({"-", "GET", "/healthz", 200, 1, 15});
  }
  EXPECT_EQ(std::ftell(out), 0);
  std::fclose(out);
}

}  // namespace
}  // namespace sessionctx::apps
