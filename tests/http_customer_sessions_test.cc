// The routes of a customer's sessions through the handler: the management listing
// (paged) and logout everywhere, the shopper's own /me/sessions, and their errors.
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/http_routes.h"
#include "tests/handler_fixture.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::HandlerTest;
using testing::kNow;

constexpr char kCustomerPath[] = "/session-context/acme/customers/c1/contexts";
constexpr char kMine[] = "/session-context/acme/me/sessions";

class CustomerRoutesTest : public HandlerTest {
 protected:
  void SetUp() override {
    for (const char* id : {"s1", "s2", "s3"}) Seed(id, "c1");
    Seed("d1", "c2");
    Seed("anon");
  }
  // The ids a listing's pages hold, following nextCursor.
  std::vector<std::string> ListedIds(const std::string& path, const std::string& token,
                                     int limit) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      std::string target = absl::StrCat(path, "?limit=", limit);
      if (!cursor.empty()) absl::StrAppend(&target, "&cursor=", cursor);
      HttpResponse r = Call("GET", target, token);
      EXPECT_EQ(r.status, 200) << r.body;
      const Json b = Body(r);
      EXPECT_LE(b["sessions"].size(), static_cast<size_t>(limit));
      for (const Json& s : b["sessions"]) ids.push_back(s["sessionId"]);
      if (!b.contains("nextCursor")) break;
      cursor = b["nextCursor"];
    }
    return ids;
  }
};

TEST_F(CustomerRoutesTest, ManagementListsTheCustomersSessionsPageByPage) {
  EXPECT_EQ(ListedIds(kCustomerPath, ManageToken(), 2),
            (std::vector<std::string>{"s1", "s2", "s3"}));
  HttpResponse r = Call("GET", kCustomerPath, ManageToken());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  const Json first = Body(r)["sessions"][0];
  EXPECT_EQ(first["version"], 1);
  EXPECT_EQ(first["createdAt"], FormatTimestamp(kNow));
  EXPECT_EQ(first["modifiedAt"], FormatTimestamp(kNow));
  EXPECT_FALSE(first.contains("expiresAt"));
  EXPECT_FALSE(first.contains("current"))
      << "only /me/sessions marks the current session";
  EXPECT_FALSE(first.contains("context")) << "summaries, not contexts";
  // A customer id with a space, percent-encoded in the path.
  Seed("sp", "jane doe");
  EXPECT_EQ(
      ListedIds("/session-context/acme/customers/jane%20doe/contexts", ManageToken(), 10),
      std::vector<std::string>{"sp"});
  EXPECT_EQ(
      Body(Call("GET", "/session-context/acme/customers/nobody/contexts", ManageToken())),
      (Json{{"sessions", Json::array()}}));
}

TEST_F(CustomerRoutesTest, ListingRefusesBadPagesAndForeignCallers) {
  ExpectError(Call("GET", absl::StrCat(kCustomerPath, "?limit=0"), ManageToken()), 400,
              "limit");
  ExpectError(Call("GET", absl::StrCat(kCustomerPath, "?limit=1001"), ManageToken()), 400,
              "limit");
  ExpectError(Call("GET", absl::StrCat(kCustomerPath, "?limit=ten"), ManageToken()), 400,
              "limit");
  ExpectError(Call("GET", absl::StrCat(kCustomerPath, "?cursor=%%%"), ManageToken()),
              400);
  ExpectError(Call("GET", absl::StrCat(kCustomerPath, "?cursor=!!"), ManageToken()), 400,
              "cursor");
  ExpectError(Call("GET", kCustomerPath, ""), 401);
  ExpectError(Call("GET", kCustomerPath, SessionToken("s1")), 403, "scope");
  ExpectError(Call("GET", kCustomerPath, CustomerToken("s1", "c1")), 403, "scope");
  ExpectError(Call("GET", kCustomerPath, ManageToken("other")), 403, "tenant");
  ExpectError(Call("DELETE", kCustomerPath, ManageToken("other")), 403, "tenant");
  ExpectError(Call("DELETE", kCustomerPath, SessionToken("s1")), 403, "scope");
  HttpResponse put = Call("PUT", kCustomerPath, ManageToken(), "{}");
  ExpectError(put, 405);
  EXPECT_EQ(put.Header("Allow"), "GET, DELETE");
  ExpectError(Call("GET", "/session-context/ab/customers/c1/contexts", ManageToken()),
              400);
  EXPECT_EQ(Call("GET", kCustomerPath, ManageToken()).status, 200) << "nothing was ended";
}

TEST_F(CustomerRoutesTest, ManagementEndsAllButOneThenAll) {
  HttpResponse r =
      Call("DELETE", absl::StrCat(kCustomerPath, "?except=s2"), ManageToken());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), (Json{{"ended", 2}}));
  EXPECT_EQ(ListedIds(kCustomerPath, ManageToken(), 10), std::vector<std::string>{"s2"});
  EXPECT_EQ(Call("GET", "/session-context/acme/context/s1", ManageToken()).status, 404);
  EXPECT_EQ(Body(Call("DELETE", kCustomerPath, ManageToken())), (Json{{"ended", 1}}));
  EXPECT_EQ(Body(Call("DELETE", kCustomerPath, ManageToken())), (Json{{"ended", 0}}));
  EXPECT_EQ(Call("GET", "/session-context/acme/context/d1", ManageToken()).status, 200);
  EXPECT_EQ(Call("GET", "/session-context/acme/context/anon", ManageToken()).status, 200);
}

TEST_F(CustomerRoutesTest, MySessionsMarksTheCurrentOneAndSignsOutTheOthers) {
  HttpResponse r = Call("GET", kMine, CustomerToken("s2", "c1"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> current;
  const Json mine = Body(r);
  for (const Json& s : mine["sessions"]) {
    ASSERT_TRUE(s["current"].is_boolean()) << r.body;
    if (s["current"].get<bool>()) current.insert(s["sessionId"].get<std::string>());
  }
  EXPECT_EQ(current, std::set<std::string>{"s2"}) << r.body;
  EXPECT_EQ(ListedIds(kMine, CustomerToken("s2", "c1"), 1),
            (std::vector<std::string>{"s1", "s2", "s3"}));
  // Another customer's token sees only its own.
  EXPECT_EQ(ListedIds(kMine, CustomerToken("d1", "c2"), 10),
            std::vector<std::string>{"d1"});

  ExpectError(
      Call("DELETE", absl::StrCat(kMine, "?except=others"), CustomerToken("s2", "c1")),
      400, "except");
  r = Call("DELETE", absl::StrCat(kMine, "?except=current"), CustomerToken("s2", "c1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), (Json{{"ended", 2}}));
  EXPECT_EQ(ListedIds(kMine, CustomerToken("s2", "c1"), 10),
            std::vector<std::string>{"s2"});
  EXPECT_EQ(
      Call("GET", "/session-context/acme/me/context", CustomerToken("s2", "c1")).status,
      200);
  // Without except, the current session goes too.
  EXPECT_EQ(Body(Call("DELETE", kMine, CustomerToken("s2", "c1"))), (Json{{"ended", 1}}));
  EXPECT_EQ(
      Call("GET", "/session-context/acme/me/context", CustomerToken("s2", "c1")).status,
      404);
  EXPECT_EQ(Call("GET", "/session-context/acme/context/d1", ManageToken()).status, 200);
}

TEST_F(CustomerRoutesTest, MySessionsRefusesAnonymousAndForeignTokens) {
  ExpectError(Call("GET", kMine, SessionToken("anon")), 403, "anonymous");
  ExpectError(
      Call("DELETE", absl::StrCat(kMine, "?except=current"), SessionToken("anon")), 403,
      "anonymous");
  ExpectError(Call("GET", kMine, ManageToken()), 403);
  ExpectError(
      Call("GET", "/session-context/other/me/sessions", CustomerToken("s1", "c1")), 403,
      "tenant");
  ExpectError(Call("GET", kMine, ""), 401);
  // A customer token without a session id lists, but cannot keep "the current" one.
  const std::string no_session = Token({{"tenant", "acme"}, {"customerId", "c1"}});
  HttpResponse listed = Call("GET", kMine, no_session);
  ASSERT_EQ(listed.status, 200) << listed.body;
  const Json page = Body(listed);
  ASSERT_EQ(page["sessions"].size(), 3u);
  for (const Json& s : page["sessions"]) EXPECT_EQ(s["current"], false);
  ExpectError(Call("DELETE", absl::StrCat(kMine, "?except=current"), no_session), 403,
              "session id");
  ExpectError(Call("PATCH", kMine, CustomerToken("s1", "c1"), "{}"), 405);
  EXPECT_EQ(ListedIds(kCustomerPath, ManageToken(), 10).size(), 3u)
      << "nothing was ended";
}

TEST(QueryValue, FormDecodesAndNamesAMalformedEscape) {
  EXPECT_EQ(*QueryValue("limit=5&cursor=a%2Bb+c", "cursor"), "a+b c");
  EXPECT_EQ(*QueryValue("limit=5&cursor=", "cursor"), "");
  EXPECT_EQ(*QueryValue("limit=5", "cursor"), std::nullopt);
  absl::StatusOr<std::optional<std::string>> bad = QueryValue("cursor=%4", "cursor");
  EXPECT_STATUS(bad, kInvalidArgument);
  EXPECT_NE(bad.status().message().find("cursor"), std::string::npos);
  EXPECT_STATUS(QueryValue("except=%zz", "except"), kInvalidArgument);
}

}  // namespace
}  // namespace sessionctx
