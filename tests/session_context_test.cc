// The record's JSON shape (docs/api.md) and value validation.
#include "sessionctx/session_context.h"

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

TEST(ToJson, OmitsAbsentOptionalFields) {
  SessionContext s;
  s.session_id = "abc";
  s.version = 1;
  Json j = ToJson(s);
  EXPECT_EQ(j["sessionId"], "abc");
  for (const char* f : {"customerId", "siteCode", "currency", "cartId", "targetLocation",
                        "language"}) {
    EXPECT_FALSE(j.contains(f)) << f;
  }
  EXPECT_EQ(j["context"], Json::object());
  EXPECT_EQ(j["metadata"]["version"], 1);
}

TEST(ToJson, WritesEveryFieldByItsName) {
  SessionContext s;
  s.session_id = "abc";
  s.customer_id = "c1";
  s.site_code = "main";
  s.currency = "EUR";
  s.cart_id = "cart";
  s.target_location = "DE";
  s.language = "de-CH";
  s.context = Json{{"k", "v"}};
  s.version = 5;
  s.created_at = absl::FromUnixMillis(1770225010134);
  s.modified_at = absl::FromUnixMillis(1770225011000);
  Json j = ToJson(s);
  EXPECT_EQ(j, Json::parse(R"({"sessionId":"abc","customerId":"c1","siteCode":"main",
      "currency":"EUR","cartId":"cart","targetLocation":"DE","language":"de-CH",
      "context":{"k":"v"},"metadata":{"version":5,"createdAt":"2026-02-04T17:10:10.134Z",
      "modifiedAt":"2026-02-04T17:10:11.000Z"}})"));
}

TEST(FormatTimestamp, UtcWithMilliseconds) {
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(1770225010134)), "2026-02-04T17:10:10.134Z");
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(0)), "1970-01-01T00:00:00.000Z");
}

TEST(SessionContextFromJson, RoundTrips) {
  SessionContext s;
  s.session_id = "abc";
  s.currency = "EUR";
  s.context = Json{{"deep", {{"x", Json::array({1, "two"})}}}};
  s.version = 9;
  s.created_at = absl::FromUnixMillis(1770225010134);
  s.modified_at = absl::FromUnixMillis(1770225010999);
  absl::StatusOr<SessionContext> back = SessionContextFromJson(ToJson(s));
  ASSERT_OK(back);
  EXPECT_EQ(*back, s);
}

TEST(SessionContextFromJson, RejectsBadFieldsNamingThem) {
  Json j = Json::parse(R"({"sessionId":"a","currency":"eur","metadata":{"version":1,
      "createdAt":"2026-02-04T17:10:10.134Z","modifiedAt":"2026-02-04T17:10:10.134Z"}})");
  absl::StatusOr<SessionContext> r = SessionContextFromJson(j);
  EXPECT_STATUS(r, kInvalidArgument);
  EXPECT_NE(r.status().message().find("currency"), std::string::npos);
  j["currency"] = "EUR";
  j["metadata"].erase("version");
  EXPECT_STATUS(SessionContextFromJson(j), kInvalidArgument);
}

TEST(ValidateTenant, AcceptsSpecShape) {
  EXPECT_OK(ValidateTenant("acme"));
  EXPECT_OK(ValidateTenant("a1b"));
  EXPECT_OK(ValidateTenant("abcdefghijklmnop"));  // 16
}

TEST(ValidateTenant, RejectsOtherShapes) {
  for (const char* t : {"ab", "abcdefghijklmnopq", "1abc", "Acme", "ac-me", "ac me", ""}) {
    absl::Status st = ValidateTenant(t);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << t;
    EXPECT_NE(st.message().find("tenant"), std::string::npos);
  }
}

TEST(ValidateCurrency, ThreeUpperCaseLetters) {
  EXPECT_OK(ValidateCurrency("EUR"));
  for (const char* c : {"eur", "EU", "EURO", "E1R", ""}) {
    EXPECT_EQ(ValidateCurrency(c).code(), absl::StatusCode::kInvalidArgument) << c;
  }
}

TEST(ValidateTargetLocation, TwoUpperCaseLetters) {
  EXPECT_OK(ValidateTargetLocation("CH"));
  for (const char* c : {"ch", "CHE", "C", "C1"}) {
    EXPECT_EQ(ValidateTargetLocation(c).code(), absl::StatusCode::kInvalidArgument) << c;
  }
}

TEST(ValidateLanguage, Bcp47Shape) {
  for (const char* l : {"en", "de-CH", "zh-Hant-TW", "es-419", "fil"}) {
    EXPECT_OK(ValidateLanguage(l)) ;
  }
  for (const char* l : {"", "e", "en_US", "-en", "en-", "en--US", "toolongprimary", "1en"}) {
    EXPECT_EQ(ValidateLanguage(l).code(), absl::StatusCode::kInvalidArgument) << l;
  }
}

TEST(ValidateSessionId, RefusesInvalidUtf8AndControls) {
  EXPECT_OK(ValidateSessionId("3f2a-Grüße"));
  EXPECT_EQ(ValidateSessionId("\xff\xfe").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId("\xc0\xaf").code(), absl::StatusCode::kInvalidArgument);  // overlong
  EXPECT_EQ(ValidateSessionId("\xed\xa0\x80").code(), absl::StatusCode::kInvalidArgument);  // surrogate
  EXPECT_EQ(ValidateSessionId("a\nb").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId("\xe2\x82").code(), absl::StatusCode::kInvalidArgument);  // cut short
}

TEST(ValidateSiteCode, NonEmpty) {
  EXPECT_OK(ValidateSiteCode("main"));
  EXPECT_EQ(ValidateSiteCode("").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sessionctx
