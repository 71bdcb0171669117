// memory: backend against its floor: a hash map lookup and a copy of the record's
// serialized bytes under one mutex. And the in-process HTTP read: HttpHandler::Handle
// of GET /me/context with an HS256 and an RS256 token (the verified-token cache on).
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "benchmark/benchmark.h"
#include "sessionctx/http_handler.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/store_factory.h"
#include "sessionctx/jwt.h"

namespace sessionctx::bench {
namespace {

constexpr int kSessions = 1000;
std::string Id(int i) { return absl::StrCat("session-", i); }

SessionStore& FilledStore() {
  static std::unique_ptr<SessionStore> store = [] {
    auto s = *OpenSessionStore("memory:", StoreOptions{});
    SessionService service(s.get(), ServiceOptions{});
    for (int i = 0; i < kSessions; ++i) (void)service.Create("acme", TypicalSession(Id(i)));
    return s;
  }();
  return *store;
}

// The floor: the same records' wire bytes in a map behind one mutex, copied out.
void BM_BareMap_Get(benchmark::State& state) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::string>* map = [] {
    auto* m = new std::unordered_map<std::string, std::string>();
    for (int i = 0; i < kSessions; ++i) {
      (*m)["acme/" + Id(i)] = std::string(FilledStore().GetText({"acme", Id(i)}).value()->json());
    }
    return m;
  }();
  int i = 0;
  for (auto _ : state) {
    std::string copy;
    {
      std::lock_guard<std::mutex> lock(mu);
      copy = map->at("acme/" + Id(i++ % kSessions));
    }
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_BareMap_Get);

// What a GET does: the store's text, its bytes copied out (as into a response).
void BM_Memory_Get(benchmark::State& state) {
  SessionStore& store = FilledStore();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<std::shared_ptr<const SessionText>> s = store.GetText({"acme", Id(i++ % kSessions)});
    std::string copy((*s)->json());
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_Memory_Get);

// The record as a value (a DOM of its context), for embedders that want one.
void BM_Memory_GetRecord(benchmark::State& state) {
  SessionStore& store = FilledStore();
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<SessionContext> s = store.Get({"acme", Id(i++ % kSessions)});
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Memory_GetRecord);

std::string PrivatePem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}
std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// HttpHandler::Handle(GET /me/context) in process; Arg 0: HS256, 1: RS256. Each
// iteration reads one of kSessions sessions with that session's token.
void BM_Handler_GetOwn(benchmark::State& state) {
  const bool rsa = state.range(0) == 1;
  static SessionService service(&FilledStore(), ServiceOptions{});
  std::unique_ptr<TokenVerifier> verifier;
  std::string key;
  if (rsa) {
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    key = PrivatePem(pkey);
    verifier = *NewPublicKeyVerifier(PublicPem(pkey), JwtOptions{});
    EVP_PKEY_free(pkey);
  } else {
    key = "bench-secret-bench-secret-bench-secret";
    verifier = *NewHs256Verifier(key, JwtOptions{});
  }
  const HttpHandler handler(&service, verifier.get(), HandlerOptions{});
  std::vector<HttpRequest> requests;
  const int64_t exp = absl::ToUnixSeconds(absl::Now()) + 3600;
  for (int i = 0; i < kSessions; ++i) {
    const std::string token =
        *SignJwt({{"tenant", "acme"}, {"sessionId", Id(i)}, {"exp", exp}},
                 rsa ? JwtAlgorithm::kRS256 : JwtAlgorithm::kHS256, key);
    requests.push_back(HttpRequest{"GET", "/session-context/acme/me/context",
                                   {{"Authorization", "Bearer " + token}}, ""});
  }
  int i = 0;
  for (auto _ : state) {
    HttpResponse res = handler.Handle(requests[i++ % kSessions]);
    if (res.status != 200) state.SkipWithError("not 200");
    benchmark::DoNotOptimize(res);
  }
  state.SetLabel(rsa ? "RS256" : "HS256");
}
BENCHMARK(BM_Handler_GetOwn)->Arg(0)->Arg(1);

// Heap held per session with 1,000,000 typical sessions stored, against the
// sessions' serialized (wire JSON) bytes.
void BM_Memory_BytesPerSession(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks;
    auto store = *OpenSessionStore("memory:", StoreOptions{});
    {
      SessionService service(store.get(), ServiceOptions{});
      for (int64_t i = 0; i < n; ++i) {
        SessionContext s = TypicalSession(NewSessionId());
        (void)service.Create("acme", s);
      }
    }
    malloc_trim(0);
    const size_t held = mallinfo2().uordblks - before;
    double serialized = 0;
    (void)store->ForEach([&](const SessionKey&, const SessionContext& s) {
      serialized += static_cast<double>(ToJson(s).dump().size());
      return true;
    });
    state.counters["heap_per_session"] = static_cast<double>(held) / static_cast<double>(n);
    state.counters["json_per_session"] = serialized / static_cast<double>(n);
    state.counters["ratio"] = static_cast<double>(held) / serialized;
  }
}
BENCHMARK(BM_Memory_BytesPerSession)->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace sessionctx::bench

BENCHMARK_MAIN();
