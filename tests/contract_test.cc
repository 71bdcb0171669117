// The server checked against its OpenAPI document (docs/openapi.yaml): the real
// server behind Stoplight Prism in proxy mode, every route with its success and
// error cases sent through Prism, and every answer's `sl-violations` header read.
// Error-case requests break the document's request rules on purpose, so only
// violations of the *response* fail the test. Prism comes from npm
// (scripts/test.sh installs it and sets SESSIONCTX_PRISM); with CI=true and no
// Prism the test fails rather than skip.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sessionctx/session_context.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::FreePort;
using testing::Headers;
using testing::HttpConnection;
using testing::HttpReply;
using testing::ServerProcess;
using testing::TempDir;

// Prism: `prism proxy SPEC UPSTREAM --port PORT` as a child process.
class Prism {
 public:
  bool Start(const std::string& prism, const std::string& spec, int upstream_port) {
    port_ = FreePort();
    pid_ = fork();
    if (pid_ == 0) {
      const std::string upstream = absl::StrCat("http://127.0.0.1:", upstream_port);
      const std::string port = std::to_string(port_);
      const int devnull = ::open("/dev/null", O_WRONLY);
      dup2(devnull, STDOUT_FILENO);
      execl(prism.c_str(), prism.c_str(), "proxy", spec.c_str(), upstream.c_str(), "--port",
            port.c_str(), "--host", "127.0.0.1", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {  // Node takes a few seconds to start
      if (auto r = testing::Fetch(port_, "GET", "/healthz"); r && r->status == 200) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  ~Prism() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Exchange {
  std::string method, target;
  Headers headers;
  std::string body;
  int status;  // what the server must answer
};

TEST(Contract, EveryRouteAndErrorMatchesTheOpenApiDocument) {
  const char* prism = std::getenv("SESSIONCTX_PRISM");
  if (prism == nullptr) {
    if (testing::InCi()) FAIL() << "SESSIONCTX_PRISM is not set";
    GTEST_SKIP() << "SESSIONCTX_PRISM is not set (scripts/test.sh installs Prism)";
  }
  TempDir dir;
  const std::string secret = (dir.path() / "secret").string();
  std::ofstream(secret) << "contract-secret\n";
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", "memory:",
                                                 "--jwt-secret-file", secret, "--max-body",
                                                 "2000"}));
  Prism proxy;
  ASSERT_TRUE(proxy.Start(prism, SESSIONCTX_OPENAPI_YAML, server.port())) << "Prism did not start";

  const Headers manage = {{"Authorization",
                           "Bearer " + testing::MintToken(
                                           secret, "--tenant acme --scope session_context.context_manage")}};
  const Headers shopper = {
      {"Authorization", "Bearer " + testing::MintToken(secret, "--tenant acme --session s1")}};
  const Headers stranger = {
      {"Authorization", "Bearer " + testing::MintToken(secret, "--tenant other --session s1")}};
  const Headers lost = {
      {"Authorization", "Bearer " + testing::MintToken(secret, "--tenant acme --session gone")}};
  const std::string customer_token =
      testing::MintToken(secret, "--tenant acme --session cs1 --customer c1");
  const Headers customer = {{"Authorization", "Bearer " + customer_token}};
  auto with = [](Headers headers, const std::string& name, const std::string& value) {
    headers.emplace_back(name, value);
    return headers;
  };
  const std::string own = "/session-context/acme/me/context";
  const std::string managed = "/session-context/acme/context/s1";
  const std::vector<Exchange> exchanges = {
      {"GET", "/healthz", {}, "", 200},
      {"GET", "/readyz", {}, "", 200},
      {"GET", "/openapi.json", {}, "", 200},
      {"PUT", managed + "?upsert=true", manage, R"({"siteCode":"main","currency":"EUR"})",
       204},
      {"PUT", managed, manage, R"({"currency":"CHF","metadata":{"version":1}})", 204},
      {"PUT", managed, manage, R"({"currency":"USD","metadata":{"version":1}})", 409},
      {"PUT", managed, manage, R"({"sessionId":"other","metadata":{"version":2}})", 400},
      {"PUT", managed, shopper, R"({"metadata":{"version":2}})", 403},
      {"PUT", managed, {}, R"({"metadata":{"version":2}})", 401},
      {"GET", own, shopper, "", 200},
      {"GET", own, {}, "", 401},
      {"GET", own, stranger, "", 403},
      {"GET", own, lost, "", 404},
      {"POST", own, shopper, "{}", 405},
      {"PATCH", own, shopper, R"({"language":"de-CH","metadata":{"version":2}})", 204},
      {"PATCH", own, shopper, R"({"language":"fr","metadata":{"version":2}})", 409},
      {"PATCH", own, shopper, R"({"currency":"euro","metadata":{"version":3}})", 400},
      {"PATCH", own, shopper, "", 400},
      {"PATCH", own, shopper,
       R"({"context":{"pad":")" + std::string(3000, 'x') +
           R"("},"metadata":{"version":3}})",
       413},
      {"POST", own + "/attributes", shopper,
       R"({"key":"gift wrap","value":{"paper":"red"}})", 201},
      {"POST", own + "/attributes", shopper, R"({"value":1})", 400},
      {"DELETE", own + "/attributes/gift%20wrap", shopper, "", 204},
      {"GET", managed, manage, "", 200},
      {"GET", "/session-context/acme/context/nobody", manage, "", 404},
      {"GET", "/session-context/ab/context/s1", manage, "", 400},
      {"GET", "/session-context/acme/context/" + std::string(9000, 'x'), manage, "", 414},
      {"POST", managed + "/attributes", manage, R"({"key":"k","value":[1,2]})", 204},
      {"POST", own + "/attributes", with(shopper, "If-Match", "\"1\""),
       R"({"key":"x","value":1})", 409},
      {"DELETE", own + "/attributes/k", with(shopper, "If-Match", "\"1\""), "", 409},
      {"DELETE", managed + "/attributes/k", with(manage, "If-Match", "\"1\""), "", 409},
      {"DELETE", managed + "/attributes/k", manage, "", 204},
      {"POST", managed + "/attributes", with(manage, "If-Match", "\"6\""),
       R"({"key":"k","value":"\u0000"})", 400},
      {"DELETE", managed, with(manage, "If-Match", "\"2\""), "", 409},
      {"DELETE", managed, with(manage, "If-Match", "\"7\""), "", 204},
      {"DELETE", managed, manage, "", 404},
      {"PUT", "/session-context/acme/context/cs1?upsert=true",
       with(manage, "saas-token", customer_token), R"({"customerId":"c1"})", 204},
      {"PUT", "/session-context/acme/context/cs2?upsert=true",
       with(manage, "saas-token", customer_token), R"({"customerId":"c1"})", 204},
      {"GET", "/session-context/acme/customers/c1/contexts?limit=1", manage, "", 200},
      {"GET", "/session-context/acme/customers/c1/contexts?cursor=Y3Mx", manage, "", 200},
      {"GET", "/session-context/acme/customers/c1/contexts?limit=0", manage, "", 400},
      {"GET", "/session-context/acme/customers/c1/contexts", shopper, "", 403},
      {"GET", "/session-context/acme/customers/c1/contexts", {}, "", 401},
      {"PATCH", "/session-context/acme/customers/c1/contexts", manage, "{}", 405},
      {"GET", "/session-context/acme/me/sessions", customer, "", 200},
      {"GET", "/session-context/acme/me/sessions", shopper, "", 403},
      {"DELETE", "/session-context/acme/me/sessions?except=all", customer, "", 400},
      {"DELETE", "/session-context/acme/me/sessions?except=current", customer, "", 200},
      {"DELETE", "/session-context/acme/customers/c1/contexts", manage, "", 200},
      {"GET", "/metrics", {}, "", 200},
  };
  HttpConnection via_prism(proxy.port());
  for (const Exchange& x : exchanges) {
    SCOPED_TRACE(x.method + " " + x.target.substr(0, 80));
    ASSERT_TRUE(via_prism.Send(testing::FormatRequest(x.method, x.target, x.headers, x.body)));
    std::optional<HttpReply> r = via_prism.Read(std::chrono::seconds(30), x.method == "HEAD");
    ASSERT_TRUE(r) << "no answer through Prism";
    EXPECT_EQ(r->status, x.status) << r->body;
    const std::string violations = r->Header("sl-violations");
    if (!violations.empty()) {
      const Json list = Json::parse(violations, nullptr, false);
      ASSERT_TRUE(list.is_array()) << violations;
      for (const Json& v : list) {
        const bool response = v.contains("location") && v["location"].is_array() &&
                              !v["location"].empty() && v["location"][0] == "response";
        EXPECT_FALSE(response) << "the answer breaks the document: " << v.dump();
      }
    }
  }
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace sessionctx
