// Key rotation over HTTP: the real server re-reads its key file on SIGHUP and when the
// file changes, keeps serving while it does, keeps the keys in use when the new file
// is broken, and picks JWKS keys by the token's kid.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "apps/key_file.h"
#include "gtest/gtest.h"
#include "sessionctx/jwt.h"
#include "tests/http_client.h"
#include "tests/server_process.h"
#include "tests/test_keys.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::Fetch;
using testing::HttpConnection;
using testing::MakeTestKey;
using testing::ServerProcess;
using testing::TempDir;
using testing::TestKey;
using testing::WithKid;

// The key file is stat'ed before it is read: a rotation that lands after the read
// (here: before the reloader exists, where a stat would have hidden it) is reloaded.
TEST(KeyReloader, ARotationJustAfterTheFirstReadIsReloaded) {
  TempDir dir;
  const std::string path = (dir.path() / "secret").string();
  std::ofstream(path) << "first-secret-0123456789abcdef0123\n";
  apps::KeyFile file{apps::KeyFile::Kind::kSecret, path};
  const std::optional<apps::KeyReloader::Version> before = apps::KeyReloader::StatFile(path);
  ASSERT_TRUE(before.has_value());
  absl::StatusOr<std::unique_ptr<TokenVerifier>> loaded = apps::LoadVerifier(file, JwtOptions{});
  ASSERT_OK(loaded);
  SwappableVerifier verifier(*std::move(loaded));
  std::ofstream(path) << "second-secret-0123456789abcdef012345\n";
  apps::KeyReloader reloader(file, JwtOptions{}, &verifier, before);
  const Json claims = {{"tenant", "acme"}, {"sessionId", "s1"}, {"exp", absl::ToUnixSeconds(absl::Now()) + 600}};
  const std::string second = *SignJwt(claims, JwtAlgorithm::kHS256, "second-secret-0123456789abcdef012345");
  EXPECT_STATUS(verifier.Verify(second), kUnauthenticated);
  EXPECT_FALSE(reloader.ReloadIfChanged().has_value());  // changed: looked at once
  std::optional<absl::Status> reloaded = reloader.ReloadIfChanged();
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_OK(*reloaded);
  EXPECT_OK(verifier.Verify(second));
}

const TestKey& KeyA() {
  static const TestKey* k = new TestKey(MakeTestKey(false));
  return *k;
}
const TestKey& KeyB() {
  static const TestKey* k = new TestKey(MakeTestKey(true));
  return *k;
}

Json Claims() {
  return {{"tenant", "acme"},
          {"scope", "session_context.context_manage"},
          {"exp", absl::ToUnixSeconds(absl::Now()) + 600}};
}

// Status of a read of a session that does not exist: 404 when the token is accepted,
// 401 when not.
int StatusWith(int port, const std::string& token) {
  auto r = Fetch(port, "GET", "/session-context/acme/context/nobody",
                 {{"Authorization", "Bearer " + token}});
  return r ? r->status : 0;
}

// WriteAtomically replaces `path` the way an operator should: write aside, rename.
void WriteAtomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path aside = path.string() + ".new";
  std::ofstream(aside) << text;
  std::filesystem::rename(aside, path);
}

std::string KeySet(std::vector<Json> keys) {
  Json list = Json::array();
  for (Json& k : keys) list.push_back(std::move(k));
  return Json{{"keys", list}}.dump();
}

// WaitForStatus polls until the token gets `status` or 10 s pass.
bool WaitForStatus(int port, const std::string& token, int status) {
  for (int i = 0; i < 200; ++i) {
    if (StatusWith(port, token) == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(KeyRotation, JwksKeysRotateWhenTheFileChangesWithoutDroppingARequest) {
  TempDir dir;
  const std::filesystem::path keys = dir.path() / "keys.json";
  WriteAtomically(keys, KeySet({WithKid(KeyA().jwk, "a")}));
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(), {"--listen", "127.0.0.1:0", "--store", "memory:",
                                                  "--jwks-file", keys.string(), "--access-log",
                                                  "off", "--key-reload-interval", "0.2"}));
  const std::string token_a = *SignJwt(Claims(), JwtAlgorithm::kES256, KeyA().private_pem, "a");
  const std::string token_b = *SignJwt(Claims(), JwtAlgorithm::kRS256, KeyB().private_pem, "b");
  EXPECT_EQ(StatusWith(server.port(), token_a), 404);
  EXPECT_EQ(StatusWith(server.port(), token_b), 401);  // kid b is not in the set

  // A client keeps sending on one keep-alive connection while the keys change: every
  // request is answered, with 404 (accepted) or 401 (not), never dropped.
  std::atomic<bool> done{false};
  std::atomic<int> answered{0}, other{0};
  std::thread client([&] {
    HttpConnection c(server.port());
    while (!done) {
      auto r = c.Request("GET", "/session-context/acme/context/nobody",
                         {{"Authorization", "Bearer " + token_a}});
      if (!r || (r->status != 404 && r->status != 401)) {
        ++other;
        return;
      }
      ++answered;
    }
  });
  // Both keys for a while (the rotation's overlap), then only the new one.
  WriteAtomically(keys, KeySet({WithKid(KeyA().jwk, "a"), WithKid(KeyB().jwk, "b")}));
  EXPECT_TRUE(WaitForStatus(server.port(), token_b, 404));
  EXPECT_EQ(StatusWith(server.port(), token_a), 404);
  WriteAtomically(keys, KeySet({WithKid(KeyB().jwk, "b")}));
  EXPECT_TRUE(WaitForStatus(server.port(), token_a, 401)) << "a removed key still verifies";
  EXPECT_EQ(StatusWith(server.port(), token_b), 404);
  done = true;
  client.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(answered.load(), 10);
  EXPECT_NE(server.Output().find("keys reloaded from"), std::string::npos);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(KeyRotation, SighupReloadsTheSecretAndABrokenFileKeepsTheKeysInUse) {
  TempDir dir;
  const std::filesystem::path secret = dir.path() / "secret";
  std::ofstream(secret) << "first-secret-of-at-least-32-bytes!\n";
  ServerProcess server;
  server.CaptureStderr();  // a refused reload is a warning
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", "memory:", "--jwt-secret-file",
                            secret.string(), "--key-reload-interval", "0"}));
  const std::string first =
      *SignJwt(Claims(), JwtAlgorithm::kHS256, "first-secret-of-at-least-32-bytes!");
  const std::string second =
      *SignJwt(Claims(), JwtAlgorithm::kHS256, "second-secret-of-at-least-32-bytes");
  EXPECT_EQ(StatusWith(server.port(), first), 404);

  WriteAtomically(secret, "second-secret-of-at-least-32-bytes\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(StatusWith(server.port(), first), 404) << "reloaded without SIGHUP at interval 0";
  server.Signal(SIGHUP);
  EXPECT_TRUE(WaitForStatus(server.port(), second, 404));
  EXPECT_EQ(StatusWith(server.port(), first), 401);

  // An empty secret is no key: refused, the second secret stays in use.
  WriteAtomically(secret, "");
  server.Signal(SIGHUP);
  for (int i = 0; i < 200 && server.Output().find("NOT reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_NE(server.Output().find("NOT reloaded"), std::string::npos) << server.Output();
  EXPECT_EQ(StatusWith(server.port(), second), 404);
  auto health = Fetch(server.port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(KeyRotation, PublicKeyFileIsReloadedOnSighup) {
  TempDir dir;
  const std::filesystem::path pem = dir.path() / "key.pem";
  WriteAtomically(pem, KeyA().public_pem);
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir.path().string(),
                           {"--listen", "127.0.0.1:0", "--store", "memory:",
                            "--jwt-public-key-file", pem.string(), "--key-reload-interval", "0"}));
  const std::string token_a = *SignJwt(Claims(), JwtAlgorithm::kES256, KeyA().private_pem);
  const std::string token_b = *SignJwt(Claims(), JwtAlgorithm::kRS256, KeyB().private_pem);
  EXPECT_EQ(StatusWith(server.port(), token_a), 404);
  WriteAtomically(pem, KeyB().public_pem);
  server.Signal(SIGHUP);
  EXPECT_TRUE(WaitForStatus(server.port(), token_b, 404));
  EXPECT_EQ(StatusWith(server.port(), token_a), 401);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(KeyRotation, ABrokenKeySetIsRefusedAtStartNamingTheProblem) {
  TempDir dir;
  const std::filesystem::path keys = dir.path() / "keys.json";
  WriteAtomically(keys, KeySet({WithKid(KeyA().jwk, "a"), WithKid(KeyB().jwk, "a")}));
  const std::string out = testing::RunCommand(
      absl::StrCat(SESSIONCTX_SERVER_BIN, " --listen 127.0.0.1:0 --store memory: --jwks-file ",
                   keys.string(), " 2>&1; echo exit=$?"));
  EXPECT_NE(out.find("used twice"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
}

TEST(KeyRotation, AShortHs256SecretIsAcceptedWithAWarning) {
  TempDir dir;
  const std::filesystem::path secret = dir.path() / "secret";
  std::ofstream(secret) << "short\n";
  const std::string out = testing::RunCommand(absl::StrCat(
      "timeout -s TERM 2 ", SESSIONCTX_SERVER_BIN,
      " --listen 127.0.0.1:0 --store memory: --jwt-secret-file ", secret.string(), " 2>&1"));
  EXPECT_NE(out.find("is 5 bytes; use at least 32"), std::string::npos) << out;
  EXPECT_NE(out.find("listening on"), std::string::npos) << out;
}

}  // namespace
}  // namespace sessionctx
