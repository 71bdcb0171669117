// The write rules of docs/api.md as pure functions, tested without any store.
#include "sessionctx/backend_support.h"
#include "sessionctx/write_rules.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

SessionContext Sample() {
  SessionContext s;
  s.session_id = "s-1";
  s.site_code = "main";
  s.currency = "EUR";
  s.cart_id = "cart-7";
  s.target_location = "DE";
  s.language = "de";
  s.context = Json{{"a", 1}, {"nested", {{"x", 1}, {"y", 2}}}};
  s.version = 3;
  return s;
}

TEST(ParseJsonBody, RejectsEmptyBody) {
  EXPECT_STATUS(ParseJsonBody("", 64), kInvalidArgument);
  EXPECT_STATUS(ParseJsonBody("  \n", 64), kInvalidArgument);
}

TEST(ParseJsonBody, RejectsMalformedJson) {
  absl::StatusOr<Json> r = ParseJsonBody("{\"a\":", 64);
  EXPECT_STATUS(r, kInvalidArgument);
  EXPECT_NE(r.status().message().find("malformed JSON"), std::string::npos);
}

// Found by the write_rules fuzzer (fuzz/regressions/write_rules/number-overflow):
// nlohmann throws out_of_range, not parse_error, for a number beyond a double.
TEST(ParseJsonBody, RejectsNumbersBeyondADouble) {
  for (const char* body : {"1e999", "{\"a\":-1.5e400}", "1111345.15E5555-555113.1rI"}) {
    absl::StatusOr<Json> r = ParseJsonBody(body, 64);
    EXPECT_STATUS(r, kInvalidArgument);
    EXPECT_NE(r.status().message().find("malformed JSON"), std::string::npos) << body;
  }
}

TEST(ParseJsonBody, RejectsInvalidUtf8) {
  EXPECT_STATUS(ParseJsonBody("{\"a\":\"\xff\xfe\"}", 64), kInvalidArgument);
}

TEST(ParseJsonBody, AcceptsNestingAtTheLimit) {
  std::string body = std::string(64, '[') + std::string(64, ']');
  ASSERT_OK(ParseJsonBody(body, 64));
}

TEST(ParseJsonBody, RejectsNestingOverTheLimit) {
  std::string body = std::string(65, '[') + std::string(65, ']');
  absl::StatusOr<Json> r = ParseJsonBody(body, 64);
  EXPECT_STATUS(r, kInvalidArgument);
  EXPECT_NE(r.status().message().find("nesting"), std::string::npos);
}

TEST(ParseJsonBody, BracketsInsideStringsDoNotCount) {
  std::string body = "{\"k\":\"" + std::string(200, '[') + "\"}";
  ASSERT_OK(ParseJsonBody(body, 64));
}

TEST(ParseJsonBody, RejectsHugeNestingWithoutCrashing) {
  std::string body(1 << 20, '[');
  EXPECT_STATUS(ParseJsonBody(body, 64), kInvalidArgument);
}

TEST(JsonDepth, CountsRootAsOne) {
  EXPECT_FALSE(JsonDepthExceeds(Json::object(), 1));
  EXPECT_TRUE(JsonDepthExceeds(Json{{"a", Json::object()}}, 1));
  EXPECT_FALSE(JsonDepthExceeds(Json(5), 0));
}

TEST(ReadVersion, AbsentIsNullopt) {
  absl::StatusOr<std::optional<int64_t>> v = ReadVersion(Json::object());
  ASSERT_OK(v);
  EXPECT_FALSE(v->has_value());
}

TEST(ReadVersion, ReadsInteger) {
  absl::StatusOr<std::optional<int64_t>> v = ReadVersion(Json{{"metadata", {{"version", 7}}}});
  ASSERT_OK(v);
  EXPECT_EQ(**v, 7);
}

TEST(ReadVersion, RejectsWrongTypes) {
  EXPECT_STATUS(ReadVersion(Json{{"metadata", {{"version", "7"}}}}), kInvalidArgument);
  EXPECT_STATUS(ReadVersion(Json{{"metadata", {{"version", 1.5}}}}), kInvalidArgument);
  EXPECT_STATUS(ReadVersion(Json{{"metadata", {{"version", 0}}}}), kInvalidArgument);
  EXPECT_STATUS(ReadVersion(Json{{"metadata", 3}}), kInvalidArgument);
}

TEST(ExpectedVersion, RequiresOne) {
  EXPECT_STATUS(ExpectedVersion(std::nullopt, std::nullopt), kInvalidArgument);
  EXPECT_EQ(*ExpectedVersion(4, std::nullopt), 4);
  EXPECT_EQ(*ExpectedVersion(std::nullopt, 5), 5);
  EXPECT_EQ(*ExpectedVersion(6, 6), 6);
  EXPECT_STATUS(ExpectedVersion(6, 7), kAborted);
}

TEST(MergePatch, Rfc7386Examples) {
  // The examples of RFC 7386 Appendix A.
  struct Case {
    const char *target, *patch, *result;
  };
  const Case kCases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", R"(null)", R"(null)"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const Case& c : kCases) {
    Json target = Json::parse(c.target);
    MergePatch(target, Json::parse(c.patch));
    EXPECT_EQ(target, Json::parse(c.result)) << c.target << " + " << c.patch;
  }
}

TEST(ApplyPatch, ChangesWhitelistedFields) {
  absl::StatusOr<SessionContext> r = ApplyPatch(
      Sample(), Json{{"siteCode", "outlet"}, {"currency", "CHF"}, {"targetLocation", "CH"},
                     {"language", "de-CH"}});
  ASSERT_OK(r);
  EXPECT_EQ(r->site_code, "outlet");
  EXPECT_EQ(r->currency, "CHF");
  EXPECT_EQ(r->target_location, "CH");
  EXPECT_EQ(r->language, "de-CH");
}

TEST(ApplyPatch, IgnoresNonWhitelistedFields) {
  absl::StatusOr<SessionContext> r =
      ApplyPatch(Sample(), Json{{"sessionId", "other"}, {"customerId", "c-9"},
                                {"cartId", "cart-x"}, {"unknown", 1}, {"metadata", {{"version", 3}}}});
  ASSERT_OK(r);
  EXPECT_EQ(*r, Sample());
}

TEST(ApplyPatch, IgnoresWrongTypesOfIgnoredFields) {
  ASSERT_OK(ApplyPatch(Sample(), Json{{"cartId", 5}, {"customerId", Json::array()}}));
}

TEST(ApplyPatch, NullRemovesBaseField) {
  absl::StatusOr<SessionContext> r = ApplyPatch(Sample(), Json{{"currency", nullptr}});
  ASSERT_OK(r);
  EXPECT_FALSE(r->currency.has_value());
  EXPECT_EQ(r->site_code, "main");
}

TEST(ApplyPatch, MergesContextRecursively) {
  absl::StatusOr<SessionContext> r = ApplyPatch(
      Sample(), Json{{"context", {{"b", true}, {"nested", {{"x", nullptr}, {"z", 3}}}}}});
  ASSERT_OK(r);
  EXPECT_EQ(r->context, (Json{{"a", 1}, {"b", true}, {"nested", {{"y", 2}, {"z", 3}}}}));
}

TEST(ApplyPatch, ContextMemberNullRemovesIt) {
  absl::StatusOr<SessionContext> r = ApplyPatch(Sample(), Json{{"context", {{"a", nullptr}}}});
  ASSERT_OK(r);
  EXPECT_FALSE(r->context.contains("a"));
}

TEST(ApplyPatch, ContextArraysAreReplaced) {
  SessionContext s = Sample();
  s.context["list"] = Json::array({1, 2, 3});
  absl::StatusOr<SessionContext> r = ApplyPatch(s, Json{{"context", {{"list", {9}}}}});
  ASSERT_OK(r);
  EXPECT_EQ(r->context["list"], Json::array({9}));
}

TEST(ApplyPatch, ContextNullEmptiesIt) {
  absl::StatusOr<SessionContext> r = ApplyPatch(Sample(), Json{{"context", nullptr}});
  ASSERT_OK(r);
  EXPECT_EQ(r->context, Json::object());
}

TEST(ApplyPatch, RejectsNonObjectContext) {
  EXPECT_STATUS(ApplyPatch(Sample(), Json{{"context", Json::array()}}), kInvalidArgument);
  EXPECT_STATUS(ApplyPatch(Sample(), Json{{"context", "x"}}), kInvalidArgument);
}

TEST(ApplyPatch, RejectsInvalidValuesNamingTheField) {
  struct Case {
    const char* field;
    Json value;
  };
  const Case kCases[] = {{"currency", "eur"},       {"currency", "EURO"},
                         {"targetLocation", "DEU"}, {"targetLocation", "de"},
                         {"language", "english!"},  {"language", "e"},
                         {"siteCode", ""},          {"currency", 12}};
  for (const Case& c : kCases) {
    absl::StatusOr<SessionContext> r = ApplyPatch(Sample(), Json{{c.field, c.value}});
    EXPECT_STATUS(r, kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status();
  }
}

TEST(ApplyPatch, RejectsNonObjectBody) {
  EXPECT_STATUS(ApplyPatch(Sample(), Json::array()), kInvalidArgument);
  EXPECT_STATUS(ApplyPatch(Sample(), Json("x")), kInvalidArgument);
}

TEST(ApplyPut, ReplacesBaseFieldsAndContext) {
  absl::StatusOr<SessionContext> r =
      ApplyPut(Sample(), Json{{"currency", "USD"}, {"context", {{"only", 1}}}});
  ASSERT_OK(r);
  EXPECT_EQ(r->currency, "USD");
  EXPECT_FALSE(r->site_code.has_value());
  EXPECT_FALSE(r->cart_id.has_value());
  EXPECT_FALSE(r->target_location.has_value());
  EXPECT_FALSE(r->language.has_value());
  EXPECT_EQ(r->context, (Json{{"only", 1}}));
  EXPECT_EQ(r->session_id, "s-1");
}

TEST(ApplyPut, SetsCartId) {
  absl::StatusOr<SessionContext> r = ApplyPut(Sample(), Json{{"cartId", "c-2"}});
  ASSERT_OK(r);
  EXPECT_EQ(r->cart_id, "c-2");
  EXPECT_EQ(r->context, Json::object());
}

TEST(ApplyPut, KeepsStoredCustomerWhenBodyHasNone) {
  SessionContext s = Sample();
  s.customer_id = "cust-1";
  absl::StatusOr<SessionContext> r = ApplyPut(s, Json::object());
  ASSERT_OK(r);
  EXPECT_EQ(r->customer_id, "cust-1");
}

TEST(ApplyPut, TakesCustomerFromBody) {
  absl::StatusOr<SessionContext> r = ApplyPut(Sample(), Json{{"customerId", "cust-2"}});
  ASSERT_OK(r);
  EXPECT_EQ(r->customer_id, "cust-2");
}

TEST(ApplyPut, RejectsSessionIdThatDiffersFromPath) {
  EXPECT_STATUS(ApplyPut(Sample(), Json{{"sessionId", "s-2"}}), kInvalidArgument);
  ASSERT_OK(ApplyPut(Sample(), Json{{"sessionId", "s-1"}}));
}

TEST(ApplyPut, RejectsInvalidValues) {
  EXPECT_STATUS(ApplyPut(Sample(), Json{{"currency", "xx"}}), kInvalidArgument);
  EXPECT_STATUS(ApplyPut(Sample(), Json{{"cartId", 5}}), kInvalidArgument);
  EXPECT_STATUS(ApplyPut(Sample(), Json{{"customerId", ""}}), kInvalidArgument);
}

TEST(ParseAttributeRequest, ReadsKeyAndValue) {
  absl::StatusOr<AttributeRequest> r =
      ParseAttributeRequest(Json{{"key", "gift wrap"}, {"value", {{"on", true}}}});
  ASSERT_OK(r);
  EXPECT_EQ(r->key, "gift wrap");
  EXPECT_EQ(r->value, (Json{{"on", true}}));
}

TEST(ParseAttributeRequest, RejectsMissingOrEmptyKey) {
  EXPECT_STATUS(ParseAttributeRequest(Json{{"value", 1}}), kInvalidArgument);
  EXPECT_STATUS(ParseAttributeRequest(Json{{"key", ""}, {"value", 1}}), kInvalidArgument);
  EXPECT_STATUS(ParseAttributeRequest(Json{{"key", 3}, {"value", 1}}), kInvalidArgument);
}

TEST(ParseAttributeRequest, RejectsMissingOrNullValue) {
  EXPECT_STATUS(ParseAttributeRequest(Json{{"key", "k"}}), kInvalidArgument);
  EXPECT_STATUS(ParseAttributeRequest(Json{{"key", "k"}, {"value", nullptr}}),
                kInvalidArgument);
}

TEST(Attributes, SetAndRemove) {
  SessionContext s = Sample();
  SetAttribute(s, "k", Json::array({1}));
  EXPECT_EQ(s.context["k"], Json::array({1}));
  EXPECT_TRUE(RemoveAttribute(s, "k"));
  EXPECT_FALSE(RemoveAttribute(s, "k"));
  EXPECT_FALSE(s.context.contains("k"));
}

TEST(AttachCustomer, SetsCustomerKeepingIdAndContext) {
  SessionContext s = Sample();
  ASSERT_OK(AttachCustomer(s, "cust-1"));
  EXPECT_EQ(s.customer_id, "cust-1");
  EXPECT_EQ(s.session_id, "s-1");
  EXPECT_EQ(s.context, Sample().context);
}

TEST(AttachCustomer, RefusesAnotherCustomer) {
  SessionContext s = Sample();
  s.customer_id = "cust-1";
  EXPECT_OK(AttachCustomer(s, "cust-1"));
  EXPECT_STATUS(AttachCustomer(s, "cust-2"), kFailedPrecondition);
}

TEST(NewSession, FillsDefaultsForMissingFields) {
  TenantDefaults d{"main", "EUR", "DE", "de"};
  SessionContext given;
  given.currency = "CHF";
  absl::StatusOr<SessionContext> r = NewSession(given, d);
  ASSERT_OK(r);
  EXPECT_EQ(r->currency, "CHF");
  EXPECT_EQ(r->site_code, "main");
  EXPECT_EQ(r->target_location, "DE");
  EXPECT_EQ(r->language, "de");
  EXPECT_EQ(r->session_id.size(), 36u);
}

TEST(NewSession, RejectsInvalidDefaults) {
  TenantDefaults d;
  d.currency = "euro";
  EXPECT_STATUS(NewSession(SessionContext{}, d), kInvalidArgument);
}

TEST(NewSessionId, IsUuidV4) {
  std::string id = NewSessionId();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
  EXPECT_NE(id, NewSessionId());
}

TEST(Stamp, CreateSetsVersionOneAndTimes) {
  SessionContext s = Sample();
  const absl::Time now = absl::FromUnixMillis(1'700'000'000'123);
  backend::StampCreate(s, backend::WriteTime{now, absl::Hours(1)});
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.created_at, now);
  EXPECT_EQ(s.modified_at, now);
  EXPECT_EQ(s.expires_at, now + absl::Hours(1));
}

TEST(Stamp, UpdateBumpsVersionAndModifiedOnly) {
  SessionContext s = Sample();
  s.created_at = absl::FromUnixMillis(1000);
  const absl::Time now = absl::FromUnixMillis(1'700'000'000'000);
  backend::StampUpdate(s, backend::WriteTime{now, absl::Minutes(5)});
  EXPECT_EQ(s.version, 4);
  EXPECT_EQ(s.created_at, absl::FromUnixMillis(1000));
  EXPECT_EQ(s.modified_at, now);
  EXPECT_EQ(s.expires_at, now + absl::Minutes(5));
}

TEST(Stamp, CustomerSessionsNeverExpire) {
  SessionContext s = Sample();
  s.customer_id = "c";
  backend::StampUpdate(s, backend::WriteTime{absl::Now(), absl::Hours(1)});
  EXPECT_EQ(s.expires_at, absl::InfiniteFuture());
}

TEST(CheckRecordSize, RefusesRecordsOverTheLimit) {
  SessionContext s = Sample();
  s.context["big"] = std::string(2000, 'x');
  EXPECT_STATUS(backend::CheckRecordSize(s, 1000), kResourceExhausted);
  EXPECT_OK(backend::CheckRecordSize(s, 1 << 20));
}

}  // namespace
}  // namespace sessionctx
