// SessionText (a record as JSON text) and the JSON text tools under it: the text is
// exactly the record's wire shape, reads back as the same record, and member edits
// touch only the member named.
#include "sessionctx/session_text.h"

#include <cmath>
#include <cstdint>
#include <iterator>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/backend_support.h"
#include "src/json_text.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

SessionContext Sample() {
  SessionContext s;
  s.session_id = "s\"1\\ü\x01";
  s.customer_id = "c1";
  s.site_code = "main";
  s.currency = "EUR";
  s.cart_id = "cart\n7";
  s.target_location = "DE";
  s.language = "de-CH";
  s.context = Json{{"gift wrap", true}, {"nested", {{"a", {1, 2.5, "x", nullptr}}}}, {"q\"k", "v"}};
  s.version = 7;
  s.created_at = absl::FromUnixMillis(1'700'000'000'123);
  s.modified_at = absl::FromUnixMillis(1'700'000'100'456);
  s.expires_at = absl::InfiniteFuture();
  return s;
}

TEST(SessionText, IsTheWireShapeAndReadsBackAsTheSameRecord) {
  const SessionContext s = Sample();
  std::shared_ptr<const SessionText> t = SessionText::FromRecord(s);
  EXPECT_EQ(Json::parse(t->json()), ToJson(s));
  EXPECT_EQ(Json::parse(t->context_json()), s.context);
  EXPECT_EQ(t->version(), 7);
  EXPECT_EQ(t->customer_id(), "c1");
  absl::StatusOr<SessionContext> back = t->Record();
  ASSERT_OK(back);
  EXPECT_EQ(*back, s);
  EXPECT_EQ(t->Context(), s.context);
}

TEST(SessionText, AbsentFieldsAreOmittedAndAnEmptyContextIsAnObject) {
  SessionContext s{.session_id = "s1", .version = 1};
  std::shared_ptr<const SessionText> t = SessionText::FromRecord(s);
  Json j = Json::parse(t->json());
  EXPECT_FALSE(j.contains("customerId"));
  EXPECT_FALSE(j.contains("currency"));
  EXPECT_EQ(j["context"], Json::object());
  EXPECT_EQ(j, ToJson(s));
}

TEST(SessionText, WithContextKeepsTheFieldsAndSetsNewMetadata) {
  const SessionContext s = Sample();
  std::shared_ptr<const SessionText> t = SessionText::FromRecord(s);
  const absl::Time later = absl::FromUnixMillis(1'700'000'200'789);
  std::shared_ptr<const SessionText> u =
      backend::TextLayout::WithContext(*t, R"({"x":1})", {8, later, absl::InfiniteFuture()});
  SessionContext expected = s;
  expected.context = Json{{"x", 1}};
  expected.version = 8;
  expected.modified_at = later;
  EXPECT_EQ(Json::parse(u->json()), ToJson(expected));
  EXPECT_EQ(*u->Record(), expected);
}

TEST(JsonText, TimestampsMatchFormatTimestamp) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const absl::Time t = absl::FromUnixMillis(static_cast<int64_t>(rng() % 253'402'300'799'000ULL));
    std::string out;
    internal::AppendTimestamp(out, t);
    ASSERT_EQ(out, FormatTimestamp(t));
  }
  std::string out;
  internal::AppendTimestamp(out, absl::FromUnixMillis(-1));
  EXPECT_EQ(out, "1969-12-31T23:59:59.999Z");
}

TEST(JsonText, TimestampsParseBackExactly) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const absl::Time t = absl::FromUnixMillis(static_cast<int64_t>(rng() % 253'402'300'799'000ULL));
    absl::StatusOr<absl::Time> back = ParseTimestamp(FormatTimestamp(t));
    ASSERT_OK(back);
    ASSERT_EQ(*back, t) << FormatTimestamp(t);
  }
  EXPECT_EQ(*ParseTimestamp("2024-02-29T12:00:00.000Z"), absl::FromUnixSeconds(1'709'208'000));
  EXPECT_FALSE(ParseTimestamp("2023-02-29T12:00:00.000Z").ok());  // not a leap year
  EXPECT_FALSE(ParseTimestamp("2023-13-01T12:00:00.000Z").ok());
  EXPECT_OK(ParseTimestamp("2023-01-01T12:00:00+02:00"));  // any RFC 3339 time still reads
}

TEST(JsonText, StringsAreEscapedAsJsonReadsThem) {
  for (std::string s : {std::string("plain"), std::string("q\"b\\s/"), std::string("\x01\x1f\n\t\r\b\f"),
                        std::string("ü€😀"), std::string()}) {
    std::string out;
    backend::AppendJsonString(out, s);
    EXPECT_EQ(Json::parse(out).get<std::string>(), s);
    EXPECT_EQ(out, Json(s).dump());  // the same bytes as the JSON library writes
  }
}

TEST(JsonText, MembersAreFoundSetAndRemovedByTheirKeyAlone) {
  const std::string obj = R"({"a":{"k":"}"},"b\"":[1,{"c":2}],"c":"x,y","d":null})";
  auto quoted = [](absl::string_view k) { return Json(std::string(k)).dump(); };
  std::optional<backend::MemberSpan> b = backend::FindMember(obj, quoted("b\""));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(obj.substr(b->value_begin, b->end - b->value_begin), R"([1,{"c":2}])");
  EXPECT_FALSE(backend::FindMember(obj, quoted("k")).has_value());  // nested keys don't count
  Json expected = Json::parse(obj);
  for (const char* k : {"a", "b\"", "c", "d", "new"}) {
    std::string set = internal::SetMember(obj, quoted(k), R"({"v":[true]})");
    Json want = expected;
    want[k] = Json{{"v", {true}}};
    EXPECT_EQ(Json::parse(set), want) << k;
    std::string removed = internal::RemoveMember(obj, quoted(k));
    Json without = expected;
    without.erase(k);
    EXPECT_EQ(Json::parse(removed), without) << k;
  }
  EXPECT_EQ(internal::SetMember("{}", quoted("a"), "1"), R"({"a":1})");
  EXPECT_EQ(internal::RemoveMember(R"({"a":1})", quoted("a")), "{}");
  int n = 0;
  backend::ForEachMember(obj, [&](absl::string_view, absl::string_view) { ++n; });
  EXPECT_EQ(n, 4);
}

// IsJsonValue agrees with a strict JSON parser, including on the edges where a
// hand-written scanner could go wrong.
TEST(JsonText, IsJsonValueAcceptsExactlyOneStrictJsonValue) {
  const std::vector<std::string> good = {
      "0", "-0", "1.5e-3", "-12E+4", "true", "false", "null", "\"\"", " [ ] ", "{}",
      "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\n\\\"\"}", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      "[[[[1]]]]", "\"\\ud83d\\ude00\"", "{\"k\" : 1 , \"l\":2}"};
  const std::vector<std::string> bad = {
      "", " ", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "True", "[1,]", "{\"a\":1,}",
      "[1 2]", "{\"a\" 1}", "{1:2}", "{\"a\"}", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
      "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"",
      "1 2", "1e999", "-2e400", "[1]x", "{}{}", "[", "]", "{\"a\":[}", "[1,{]"};
  for (const std::string& g : good) {
    SCOPED_TRACE(g);
    EXPECT_TRUE(Json::accept(g));
    EXPECT_TRUE(backend::IsJsonValue(g, 64));
  }
  for (const std::string& b : bad) {
    SCOPED_TRACE(b);
    EXPECT_FALSE(Json::accept(b));
    EXPECT_FALSE(backend::IsJsonValue(b, 64));
  }
  EXPECT_TRUE(backend::IsJsonValue("[[[1]]]", 3));
  EXPECT_FALSE(backend::IsJsonValue("[[[1]]]", 2));
  EXPECT_FALSE(backend::IsJsonValue(std::string(100'000, '['), 128));
}

// RecordBytes (the size limit's measure, computed without copying the context) is the
// size of the record's wire text, whatever its fields hold.
TEST(JsonText, RecordBytesIsTheSizeOfTheWireText) {
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    SessionContext s;
    s.session_id = absl::StrCat("s-", rng(), i % 3 ? "" : "\xc3\xa9\"\\");
    if (i % 2) s.customer_id = absl::StrCat("c\t", rng() % 100);
    if (i % 3) s.currency = "EUR";
    if (i % 5) s.site_code = std::string(1 + rng() % 40, 'x');
    if (i % 7) s.language = "de-CH";
    s.version = static_cast<int64_t>(rng());
    s.created_at = absl::FromUnixMillis(static_cast<int64_t>(rng()) * 1000);
    s.modified_at = s.created_at + absl::Milliseconds(rng() % 100000);
    for (int k = 0; k < i % 9; ++k)
      s.context[absl::StrCat("k", k, "\n")] = Json::array({k, "v\x01", 1.5});
    if (i % 11 == 0) s.context = Json();  // not an object: rendered as {}
    EXPECT_EQ(backend::RecordBytes(s), ToJson(s).dump().size()) << i;
  }
}

// RandomJson: a value of every JSON type, nested up to `depth`, its strings drawn from
// every ASCII byte (controls, quote and backslash included) and from 2-, 3- and
// 4-byte UTF-8, its numbers from the extremes and from floats of every magnitude.
Json RandomJson(std::mt19937_64& rng, int depth) {
  const char* const kPieces[] = {
      "a",  "Z",     " ",        "\"",           "\\",
      "/",  "\x7f",  "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9b\x92",
      "{}", "\u2028"};
  auto random_string = [&rng, &kPieces] {
    std::string out;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      if (rng() % 3 == 0) {
        out.push_back(static_cast<char>(rng() % 0x80));  // any ASCII byte, NUL too
      } else {
        out += kPieces[rng() % std::size(kPieces)];
      }
    }
    return out;
  };
  switch (rng() % (depth > 0 ? 9 : 7)) {
    case 0:
      return random_string();
    case 1:
      return rng() % 2 == 0;
    case 2:
      return nullptr;
    case 3: {
      const int64_t ints[] = {0,         -1,        1,
                              INT64_MIN, INT64_MAX, static_cast<int64_t>(rng())};
      return ints[rng() % std::size(ints)];
    }
    case 4:
      return rng() % 2 ? UINT64_MAX : static_cast<uint64_t>(rng());
    case 5: {
      const double floats[] = {0.0,
                               -0.0,
                               0.1,
                               1.0,
                               -2.5,
                               1e300,
                               5e-324,
                               123456789.125,
                               std::ldexp(static_cast<double>(rng() % 1000000),
                                          -static_cast<int>(rng() % 60))};
      return floats[rng() % std::size(floats)];
    }
    case 6:
      return random_string();
    case 7: {
      Json object = Json::object();
      for (int i = static_cast<int>(rng() % 6); i > 0; --i)
        object[random_string()] = RandomJson(rng, depth - 1);
      return object;
    }
    default: {
      Json array = Json::array();
      for (int i = static_cast<int>(rng() % 6); i > 0; --i)
        array.push_back(RandomJson(rng, depth - 1));
      return array;
    }
  }
}

// JsonText is dump() byte for byte (the stored text and the size limit rest on it),
// and refuses what dump() refuses: a string that is not valid UTF-8.
TEST(JsonText, RendersExactlyAsDump) {
  std::mt19937_64 rng(29);
  for (int i = 0; i < 20000; ++i) {
    const Json value = RandomJson(rng, 4);
    ASSERT_EQ(backend::JsonText(value), value.dump()) << i;
  }
  EXPECT_EQ(backend::JsonText(Json::object()), "{}");
  EXPECT_EQ(backend::JsonText(Json::array()), "[]");
  std::string appended = "x";
  backend::AppendJson(appended, Json{{"b", 1}, {"a", {true, nullptr}}});
  EXPECT_EQ(appended, R"(x{"a":[true,null],"b":1})");
  for (const char* bad :
       {"\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    const Json as_value = Json{{"k", bad}};
    const Json as_key = Json{{bad, 1}};
    EXPECT_THROW((void)as_value.dump(), Json::type_error) << bad;
    EXPECT_THROW((void)backend::JsonText(as_value), Json::type_error) << bad;
    EXPECT_THROW((void)backend::JsonText(as_key), Json::type_error) << bad;
  }
}

// IsCanonicalJson says yes only to text the library renders itself: a text it accepts
// renders back unchanged, and each way of writing the same value otherwise is refused.
TEST(JsonText, IsCanonicalJsonAcceptsOnlyTheLibrarysOwnRendering) {
  const std::vector<std::string> canonical = {
      "{}",
      "[]",
      "0",
      "-7",
      "123456789012345678",
      "1.5",
      "0.001",
      "406.56",
      "-2.5e-07",
      "true",
      "null",
      "\"\"",
      "{\"a\":1,\"b\":[true,null,\"x\"]}",
      "{\"\":0,\"A\":1,\"a\":2}",
      "\"tab\\tquote\\\"back\\\\slash\\n\\u001f\\u000b\"",
      "\"\xc3\xa9\xf0\x9f\x98\x80/\x7f\"",
      "{\"deep\":{\"er\":{\"est\":[[1.25]]}}}"};
  const std::vector<std::string> other = {" {}",
                                          "{} ",
                                          "{\"a\": 1}",
                                          "[1, 2]",
                                          "{\"b\":1,\"a\":2}",
                                          "{\"a\":1,\"a\":2}",
                                          "-0",
                                          "1234567890123456789",
                                          "1.50",
                                          "1e2",
                                          "1E+2",
                                          "0.10",
                                          "\"\\/\"",
                                          "\"\\u00e9\"",
                                          "\"\\u000a\"",
                                          "\"\\u001F\"",
                                          "\"\\u0000\"",
                                          "{\"\\u0061\":1}",
                                          "\"\\ud83d\\ude00\"",
                                          "\"\x01\"",
                                          "\"\xc0\xaf\"",
                                          "[1,]",
                                          "{",
                                          "1e999"};
  for (const std::string& c : canonical) {
    SCOPED_TRACE(c);
    EXPECT_TRUE(backend::IsCanonicalJson(c, 64));
    EXPECT_EQ(Json::parse(c).dump(), c);
  }
  for (const std::string& o : other) {
    SCOPED_TRACE(o);
    EXPECT_FALSE(backend::IsCanonicalJson(o, 64));
  }
  EXPECT_TRUE(backend::IsCanonicalJson("[[[1]]]", 3));
  EXPECT_FALSE(backend::IsCanonicalJson("[[[1]]]", 2));
  // Varied values, rendered by the library, are all canonical; and any one-byte change
  // that stays canonical is still the library's rendering of what it parses to.
  std::mt19937 rng(7);
  const std::string alphabet = "{}[],:\"\\0123456789.-eE+ abtnrfu/\x7f\xc3\xa9";
  for (int i = 0; i < 2000; ++i) {
    Json v = Json::object();
    for (int k = 0; k < 1 + i % 7; ++k) {
      const std::string name = absl::StrCat("k", rng() % 50, k % 2 ? "\xc3\xa9" : "");
      switch (rng() % 6) {
        case 0:
          v[name] = static_cast<int64_t>(rng()) - (1LL << 31);
          break;
        case 1:
          v[name] = static_cast<double>(rng()) / 997.0;
          break;
        case 2:
          v[name] = std::string(1 + rng() % 5, static_cast<char>(rng() % 0x7e + 1));
          break;
        case 3:
          v[name] = Json::array({rng() % 2 == 0, nullptr, 1e-9 * rng()});
          break;
        case 4:
          v[name] = Json{{"n", Json::object()}, {"m", Json::array()}};
          break;
        default:
          v[name] = "\t\x1f\"\\ok";
          break;
      }
    }
    std::string text = v.dump();
    if (absl::StrContains(text, "\\u0000")) continue;  // NUL: never canonical
    ASSERT_TRUE(backend::IsCanonicalJson(text, 64)) << text;
    text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
    if (backend::IsCanonicalJson(text, 64)) {
      EXPECT_EQ(Json::parse(text).dump(), text);
    }
  }
}

}  // namespace
}  // namespace sessionctx
