// The access log's line formats and escaping (the server's side of it is tested over
// a socket in server_limits_test).
#include "apps/access_log.h"
#include "apps/server_log.h"

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

TEST(AccessLog, JsonLineCarriesTheTraceIdWhenThereIsOne) {
  AccessLogEntry entry{"-", "GET", "/healthz", 200, 1, 2, "4bf92f3577b34da6a3ce929d0e0e4736"};
  Json j = Json::parse(FormatAccessLogLine(AccessLogFormat::kJson, entry, "t"));
  EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  entry.trace_id = "";
  j = Json::parse(FormatAccessLogLine(AccessLogFormat::kJson, entry, "t"));
  EXPECT_FALSE(j.contains("trace_id"));
}

TEST(ServerLog, TextLineIsPrefixedAndJsonLineHasTimeLevelMessageAndTrace) {
  EXPECT_EQ(FormatServerLogLine(LogFormat::kText, LogLevel::kInfo, "stopped", "", ""),
            "sessionctx-server: stopped\n");
  EXPECT_EQ(FormatServerLogLine(LogFormat::kText, LogLevel::kWarning, "w", "", ""),
            "sessionctx-server: warning: w\n");
  const std::string line = FormatServerLogLine(LogFormat::kJson, LogLevel::kError,
                                               "store error: \"x\"\n\xff", "abc",
                                               "2026-11-27T10:00:00.000Z");
  ASSERT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the message holds";
  const Json j = Json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["time"], "2026-11-27T10:00:00.000Z");
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["message"], "store error: \"x\"\n\xef\xbf\xbd");  // not UTF-8: U+FFFD
  EXPECT_EQ(j["trace_id"], "abc");
  EXPECT_FALSE(Json::parse(FormatServerLogLine(LogFormat::kJson, LogLevel::kInfo, "m", "", "t"))
                   .contains("trace_id"));
}

TEST(ServerLog, TextInformationGoesToOutAndTheRestToErrJsonAllToErr) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  ASSERT_TRUE(out != nullptr && err != nullptr);
  auto text_of = [](std::FILE* f) {
    std::rewind(f);
    std::string text;
    for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
    return text;
  };
  {
    ServerLog log(LogFormat::kText, out, err);
    log.Info("up");
    log.Error("down");
    log.set_format(LogFormat::kJson);
    log.Info("json up");
  }
  EXPECT_EQ(text_of(out), "sessionctx-server: up\n");
  const std::string errors = text_of(err);
  EXPECT_EQ(errors.rfind("sessionctx-server: down\n", 0), 0u) << errors;
  EXPECT_NE(errors.find(R"("level":"info","message":"json up")"), std::string::npos) << errors;
  std::fclose(out);
  std::fclose(err);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("xml"), std::nullopt);
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
