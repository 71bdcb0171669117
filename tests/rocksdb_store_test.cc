// What the rocksdb: backend promises beyond the conformance suite: durability across a
// kill -9, reopen, DataLoss on undecodable bytes, one process at a time.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backends/rocksdb/record_codec.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "sessionctx/session_service.h"
#include "sessionctx/session_store.h"
#include "sessionctx/session_text.h"
#include "sessionctx/store_factory.h"
#include "tests/kill_writer.h"
#include "tests/test_util.h"

namespace sessionctx {
namespace {

using testing::TempDir;

std::string Uri(const TempDir& dir, const std::string& query = "") {
  return "rocksdb:" + (dir.path() / "db").string() + query;
}

TEST(RocksDbStore, ReopenAfterCleanCloseKeepsEveryRecord) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    for (int i = 0; i < 100; ++i) {
      SessionContext s;
      s.session_id = absl::StrCat("s", i);
      s.customer_id = i % 2 ? std::optional<std::string>("c") : std::nullopt;
      ASSERT_OK(service.Create("acme", s));
      ASSERT_OK(service.SetAttribute({"acme", s.session_id}, "n", i));
    }
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<SessionContext> s = (*store)->Get({"acme", absl::StrCat("s", i)});
    ASSERT_OK(s);
    EXPECT_EQ(s->version, 2);
    EXPECT_EQ(s->context["n"], i);
    EXPECT_EQ(s->customer_id.has_value(), i % 2 == 1);
  }
}

// A bulk import in many parts (a 1 MiB buffer), with sessions again in later parts,
// while two writers create and write sessions that the import also holds: every
// write a writer saw acknowledged survives (the import goes over a session only by
// Import's rule, never between a writer's read and its commit), and every imported
// session lands at the version the rule gives.
TEST(RocksDbBulkImport, PartsAndConcurrentWritersLoseNothing) {
  TempDir dir;
  auto store = OpenSessionStore(Uri(dir, "?import_buffer_mb=1"), StoreOptions{});
  ASSERT_OK(store);
  SessionService service(store->get(), ServiceOptions{});
  constexpr int kSessions = 6000, kRaced = 2000;
  auto record = [](const std::string& id, int64_t version) {
    SessionContext s;
    s.session_id = id;
    s.version = version;
    s.created_at = s.modified_at = absl::Now();
    s.expires_at = absl::Now() + absl::Hours(1);
    s.context = Json{{"padding", std::string(600, 'p')}, {"id", id}};
    return s;
  };
  std::atomic<bool> done{false};
  std::vector<std::vector<int>> acknowledged(2);
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::vector<int> order;  // this writer's half, in its own random order
      for (int k = w; k < kRaced; k += 2) order.push_back(k);
      std::shuffle(order.begin(), order.end(), std::mt19937(w));
      for (int round = 0; !done.load() && round < 50; ++round) {
        for (size_t n = 0; n < order.size() && !done.load(); ++n) {
          const int k = order[n];
          const std::string id = absl::StrCat("x", k);
          absl::Status created =
              service.Create("acme", SessionContext{.session_id = id}).status();
          if (!created.ok() && !absl::IsAlreadyExists(created)) continue;
          if (service.SetAttribute({"acme", id}, "w", round).ok())
            acknowledged[w].push_back(k);
        }
      }
    });
  }
  std::unique_ptr<BulkImport> import = (*store)->BeginImport(ImportOptions{});
  std::vector<ImportRecord> batch;
  auto add = [&] {
    ASSERT_OK(import->Add(batch));
    batch.clear();
  };
  for (int i = 0; i < kSessions; ++i) {
    batch.push_back({{"acme", absl::StrCat("s", i)}, record(absl::StrCat("s", i), 3)});
    if (i % 3 == 0) {
      const std::string id = absl::StrCat("x", i / 3);
      batch.push_back({{"acme", id}, record(id, 1)});
    }
    if (batch.size() >= 500) add();
  }
  add();
  for (int i = 0; i < kSessions;
       i += 2) {  // again, later: newer (over) or older (skipped)
    batch.push_back(
        {{"acme", absl::StrCat("s", i)}, record(absl::StrCat("s", i), i % 4 ? 5 : 2)});
    if (batch.size() >= 500) add();
  }
  add();
  absl::StatusOr<ImportResult> result = import->Finish();
  done = true;
  for (std::thread& t : writers) t.join();
  ASSERT_OK(result);
  // Every record is counted once: the older copies of s (a quarter) skipped, and the
  // x a writer had moved past version 1 skipped too.
  EXPECT_EQ(result->written + result->skipped, kSessions + kRaced + kSessions / 2);
  EXPECT_GE(result->skipped, kSessions / 4);
  for (int i = 0; i < kSessions; ++i) {
    absl::StatusOr<SessionContext> s = (*store)->Get({"acme", absl::StrCat("s", i)});
    ASSERT_OK(s);
    EXPECT_EQ(s->version, i % 2 == 0 && i % 4 != 0 ? 5 : 3) << i;
  }
  size_t checked = 0;
  for (const std::vector<int>& ks : acknowledged) {
    for (int k : ks) {
      absl::StatusOr<SessionContext> s = (*store)->Get({"acme", absl::StrCat("x", k)});
      ASSERT_OK(s);
      EXPECT_TRUE(s->context.contains("w")) << "x" << k << " lost an acknowledged write";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0u);
  // Every session's events rise in version and end at its stored version.
  std::map<std::string, int64_t> last;
  std::string after = "0";
  while (true) {
    absl::StatusOr<EventPage> page = (*store)->ReadEvents({after, kMaxEventPage, "acme"});
    ASSERT_OK(page);
    if (page->events.empty()) break;
    for (const SessionEvent& e : page->events) {
      int64_t& v = last[e.key.session_id];
      EXPECT_GE(e.version, v) << e.key.session_id;
      v = e.version;
    }
    after = page->next;
  }
  for (const auto& [id, version] : last) {
    EXPECT_EQ((*store)->Get({"acme", id})->version, version) << id;
  }
}

TEST(RocksDbStore, UndecodableValueIsDataLoss) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "bad"}));
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "good"}));
  }
  {
    // Overwrite the base record with garbage behind the library's back.
    rocksdb::Options options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {"expiry", {}},
        {"customers", {}},
        {"events", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, (dir.path() / "db").string(), families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[0],
                        rocksdb_internal::BaseKey({"acme", "bad"}), "\x01\xc1garbage")
                    .ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  EXPECT_STATUS((*store)->Get({"acme", "bad"}), kDataLoss);
  EXPECT_STATUS((*store)->CompareAndSet({"acme", "bad"}, 1, SessionContext{.session_id = "bad"}),
                kDataLoss);
  EXPECT_OK((*store)->Get({"acme", "good"}));
  int visited = 0;
  ASSERT_OK((*store)->ForEach([&](const SessionKey&, const SessionContext&) {
    ++visited;
    return true;
  }));
  EXPECT_EQ(visited, 1);
}

// RawDb opens the store's directory with RocksDB alone (the store closed), to look at
// how sessions are laid out.
class RawDb {
 public:
  explicit RawDb(const TempDir& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {"expiry", {}},
        {"customers", {}},
        {"events", {}}};
    ok_ = rocksdb::DB::Open(rocksdb::Options(), (dir.path() / "db").string(), families,
                            &handles_, &db_)
              .ok();
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }
  bool ok() const { return ok_; }
  rocksdb::DB* db() { return db_; }
  rocksdb::ColumnFamilyHandle* records() { return handles_[0]; }
  // Keys of one session: its base record and its attribute keys.
  std::vector<std::string> KeysOf(const SessionKey& key) {
    std::vector<std::string> keys;
    const std::string prefix = rocksdb_internal::SessionPrefix(key);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), records()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      keys.push_back(it->key().ToString());
    }
    return keys;
  }
  // Entries of the expiry index.
  std::vector<std::string> ExpiryEntries() {
    std::vector<std::string> keys;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    return keys;
  }
  // Keys of the customer index (the built marker included).
  std::vector<std::string> CustomerEntries() {
    std::vector<std::string> keys;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[2]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    return keys;
  }
  rocksdb::ColumnFamilyHandle* customers() { return handles_[2]; }
  std::string Value(const std::string& key) {
    std::string v;
    db_->Get(rocksdb::ReadOptions(), records(), key, &v);
    return v;
  }

 private:
  bool ok_ = false;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

TEST(RocksDbLayout, ATypicalSessionIsOneKeyWithItsContextInline) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    SessionContext s{.session_id = "s1", .currency = "EUR"};
    s.context = {{"cart", {{"items", 3}}}, {"campaign", "winter"}};
    ASSERT_OK(service.Create("acme", s));
    ASSERT_OK(service.SetAttribute({"acme", "s1"}, "giftWrap", true));
    ASSERT_OK(service.DeleteAttribute({"acme", "s1"}, "campaign"));
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.KeysOf({"acme", "s1"}), std::vector<std::string>{rocksdb_internal::BaseKey({"acme", "s1"})});
    // The one value is the session's wire text (and a trailer): what a GET sends.
    const std::string stored = raw.Value(rocksdb_internal::BaseKey({"acme", "s1"}));
    ASSERT_TRUE(rocksdb_internal::IsTextRecord(stored));
    absl::StatusOr<std::shared_ptr<const SessionText>> text = rocksdb_internal::DecodeText(stored);
    ASSERT_OK(text);
    EXPECT_EQ((*text)->Context(), Json::parse(R"({"cart":{"items":3},"giftWrap":true})"));
    EXPECT_EQ(Json::parse((*text)->json())["currency"], "EUR");
    EXPECT_EQ(absl::string_view(stored).substr(0, (*text)->json().size()), (*text)->json());
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  absl::StatusOr<std::shared_ptr<const SessionText>> text = (*store)->GetText({"acme", "s1"});
  ASSERT_OK(text);
  EXPECT_EQ((*text)->Context(), Json::parse(R"({"cart":{"items":3},"giftWrap":true})"));
  EXPECT_EQ((*text)->version(), 3);
}

// 16,000 attributes: past the inline limit the context is spilled into a key per
// attribute; the base record stays small, so adding one attribute writes that
// attribute and the small base, never the others.
TEST(RocksDbLayout, SixteenThousandAttributesAreKeysOfTheirOwn) {
  TempDir dir;
  constexpr int kAttributes = 16'000;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "big"}));
    for (int i = 0; i < kAttributes; ++i) {
      ASSERT_OK(service.SetAttribute({"acme", "big"}, absl::StrCat("a", i), i));
    }
    absl::StatusOr<SessionContext> got = service.Get({"acme", "big"});
    ASSERT_OK(got);
    EXPECT_EQ(got->context.size(), static_cast<size_t>(kAttributes));
    EXPECT_EQ(got->version, 1 + kAttributes);
    EXPECT_EQ(got->context["a15999"], 15999);
    absl::StatusOr<std::shared_ptr<const SessionText>> text = service.GetText({"acme", "big"});
    ASSERT_OK(text);
    EXPECT_EQ((*text)->Context(), got->context);
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.KeysOf({"acme", "big"}).size(), static_cast<size_t>(kAttributes + 1));
    const std::string base_bytes = raw.Value(rocksdb_internal::BaseKey({"acme", "big"}));
    EXPECT_FALSE(rocksdb_internal::IsTextRecord(base_bytes));  // fields only, binary
    ASSERT_OK(rocksdb_internal::DecodeBase(base_bytes));
    EXPECT_LT(base_bytes.size(), 100u);
    // One attribute's stored text damaged behind the store's back.
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.records(),
                              rocksdb_internal::AttributeKey({"acme", "big"}, "a5"),
                              std::string("\x03{\"broken")).ok());
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  EXPECT_STATUS((*store)->GetText({"acme", "big"}), kDataLoss);
  EXPECT_STATUS((*store)->Get({"acme", "big"}), kDataLoss);
}

// A small context written over a spilled one goes back inline, and the attribute keys
// go: nothing stale is left to resurface.
TEST(RocksDbLayout, ASpilledContextReplacedByASmallOneLeavesNoAttributeKeys) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "s"}));
    for (int i = 0; i < 600; ++i) {
      ASSERT_OK(service.SetAttribute({"acme", "s"}, absl::StrCat("attribute-", i), i));
    }
    absl::StatusOr<PutResult> put =
        service.Put({"acme", "s"}, Json::parse(R"({"context":{"x":1},"metadata":{"version":601}})"),
                    PutOptions{});
    ASSERT_OK(put);
    EXPECT_EQ(service.Get({"acme", "s"})->context, Json::parse(R"({"x":1})"));
  }
  RawDb raw(dir);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.KeysOf({"acme", "s"}).size(), 1u);
}

// Records written before small sessions were kept as text (format 0x02 for every
// session, attributes as keys) still read, and take writes.
TEST(RocksDbLayout, OlderRecordsWithoutInlineContextStillRead) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);  // creates the column families
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    rocksdb_internal::Base base;
    base.fields.session_id = "old";
    base.fields.currency = "EUR";
    base.fields.version = 4;
    base.fields.created_at = absl::FromUnixMillis(1'700'000'000'000);
    base.fields.modified_at = base.fields.created_at;
    base.json_bytes = 200;
    const std::string v2 = rocksdb_internal::EncodeBase(base);
    ASSERT_EQ(v2[0], rocksdb_internal::kFormatBaseV2);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.records(),
                              rocksdb_internal::BaseKey({"acme", "old"}), v2).ok());
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.records(),
                              rocksdb_internal::AttributeKey({"acme", "old"}, "n"),
                              std::string("\x01\x07")).ok());  // MessagePack 7
    std::string packed(1, rocksdb_internal::kFormatMsgpackV1);
    for (uint8_t b : Json::to_msgpack(Json{{"a", {1, "x"}}})) packed.push_back(static_cast<char>(b));
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.records(),
                              rocksdb_internal::AttributeKey({"acme", "old"}, "o"), packed).ok());
  }
  auto store = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(store);
  absl::StatusOr<SessionContext> got = (*store)->Get({"acme", "old"});
  ASSERT_OK(got);
  EXPECT_EQ(got->currency, "EUR");
  EXPECT_EQ(got->context, Json::parse(R"({"n":7,"o":{"a":[1,"x"]}})"));
  EXPECT_EQ((*(*store)->GetText({"acme", "old"}))->Context(), Json::parse(R"({"n":7,"o":{"a":[1,"x"]}})"));
  SessionService service(store->get(), ServiceOptions{});
  ASSERT_OK(service.SetAttribute({"acme", "old"}, "m", 8));
  EXPECT_EQ(service.Get({"acme", "old"})->context, Json::parse(R"({"n":7,"o":{"a":[1,"x"]},"m":8})"));
}

// Found by fuzz/record_codec_fuzz.cc: a stored value nested deeper than the stack
// (damaged bytes) crashed the MessagePack reader; it is DataLoss now.
TEST(RocksDbCodec, DeeplyNestedStoredValueIsDataLossNotACrash) {
  std::string deep(1, rocksdb_internal::kFormatMsgpackV1);
  deep.append(200'000, '\x91');  // an array holding an array holding ...
  deep.push_back('\xc0');
  EXPECT_STATUS(rocksdb_internal::DecodeValue(deep), kDataLoss);
  Json nested = 1;
  for (int i = 0; i < 64; ++i) nested = Json::array({nested});
  absl::StatusOr<Json> back = rocksdb_internal::DecodeValue(rocksdb_internal::EncodeValue(nested));
  ASSERT_OK(back);
  EXPECT_EQ(*back, nested);
  // A MessagePack string that is not UTF-8 (damage) cannot be written back as JSON
  // text: DataLoss, not an exception (fuzz/regressions/record_codec/msgpack-invalid-utf8).
  EXPECT_STATUS(rocksdb_internal::DecodeValue(std::string("\x01\xa1\xae")), kDataLoss);
  EXPECT_STATUS(rocksdb_internal::ValueText(std::string("\x01\xa1\xae")), kDataLoss);
  // The same for values stored as JSON text.
  std::string deep_text(1, rocksdb_internal::kFormatValueTextV3);
  deep_text.append(200'000, '[');
  EXPECT_STATUS(rocksdb_internal::DecodeValue(deep_text), kDataLoss);
  EXPECT_STATUS(rocksdb_internal::ValueText(deep_text), kDataLoss);
}

// Attribute values are stored as their JSON text, which a read of a spilled session
// joins as it is; what does not parse as exactly one value is DataLoss, never copied
// into an answer.
TEST(RocksDbCodec, ValuesAreStoredAsJsonTextAndCheckedOnRead) {
  const Json value = {{"sku", "p-1"}, {"qty", 2}, {"tags", {"a", "\u00e9\n"}}};
  const std::string stored = rocksdb_internal::EncodeValue(value);
  EXPECT_EQ(stored[0], rocksdb_internal::kFormatValueTextV3);
  EXPECT_EQ(stored.substr(1), value.dump());
  absl::StatusOr<std::string> text = rocksdb_internal::ValueText(stored);
  ASSERT_OK(text);
  EXPECT_EQ(*text, value.dump());
  for (std::string bad : {std::string("{\"a\":"), std::string("1 2"), std::string("[1]x"), std::string("")}) {
    SCOPED_TRACE(bad);
    const std::string damaged = std::string(1, rocksdb_internal::kFormatValueTextV3) + bad;
    EXPECT_STATUS(rocksdb_internal::ValueText(damaged), kDataLoss);
    EXPECT_STATUS(rocksdb_internal::DecodeValue(damaged), kDataLoss);
  }
}

TEST(RocksDbCodec, SessionTextRoundTripsAndDamageIsDataLoss) {
  SessionContext s{.session_id = "s\"1", .customer_id = "c1", .currency = "EUR", .version = 5};
  s.context = Json{{"a", {1, 2}}, {"b", "x"}};
  s.created_at = absl::FromUnixMillis(1'700'000'000'000);
  s.modified_at = absl::FromUnixMillis(1'700'000'100'000);
  std::shared_ptr<const SessionText> t = SessionText::FromRecord(s);
  const std::string bytes = rocksdb_internal::EncodeText(*t);
  absl::StatusOr<std::shared_ptr<const SessionText>> back = rocksdb_internal::DecodeText(bytes);
  ASSERT_OK(back);
  EXPECT_EQ((*back)->json(), t->json());
  EXPECT_EQ(*(*back)->Record(), *t->Record());
  EXPECT_EQ((*back)->customer_id(), "c1");
  EXPECT_EQ((*back)->expires_at(), absl::InfiniteFuture());
  std::string cut = bytes;
  cut.erase(10, 1);
  EXPECT_STATUS(rocksdb_internal::DecodeText(cut), kDataLoss);
  std::string offsets = bytes;
  offsets[offsets.size() - 49] = 3;  // context_begin no longer at the context
  EXPECT_STATUS(rocksdb_internal::DecodeText(offsets), kDataLoss);
}

// The expiry index keeps one entry per anonymous session, at the minute of its
// expiry: writes that keep the expiry within that minute do not touch it, a purge
// never removes a session before its time, and entries left by older versions (at
// the exact millisecond) are replaced rather than lost.
TEST(RocksDbExpiryIndex, OneEntryPerSessionMovedOnlyAcrossMinutes) {
  TempDir dir;
  ManualClock clock(absl::FromUnixSeconds(1'800'000'000));  // on a minute boundary
  StoreOptions options;
  options.clock = &clock;
  ServiceOptions service_options;
  service_options.clock = &clock;
  service_options.anonymous_ttl = absl::Seconds(90);
  {
    auto store = OpenSessionStore(Uri(dir), options);
    ASSERT_OK(store);
    SessionService service(store->get(), service_options);
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "s"}));
    for (int i = 0; i < 20; ++i) {  // within one minute
      clock.Advance(absl::Seconds(1));
      ASSERT_OK(service.SetAttribute({"acme", "s"}, "n", i));
    }
    clock.Advance(absl::Seconds(45));  // the expiry moves to the next minute
    ASSERT_OK(service.SetAttribute({"acme", "s"}, "n", 99));
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.ExpiryEntries().size(), 1u);
  }
  auto store = OpenSessionStore(Uri(dir), options);
  ASSERT_OK(store);
  // Expires at +65 s + 90 s = 155 s from the start; its entry is at 120 s.
  clock.Set(absl::FromUnixSeconds(1'800'000'000 + 130));
  ASSERT_OK((*store)->PurgeExpired());
  EXPECT_OK((*store)->Get({"acme", "s"}));  // not purged before its expiry
  clock.Set(absl::FromUnixSeconds(1'800'000'000 + 155));
  absl::StatusOr<int64_t> purged = (*store)->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 1);
  EXPECT_STATUS((*store)->Get({"acme", "s"}), kNotFound);
}

TEST(RocksDbExpiryIndex, AnEntryAtTheExactMillisecondIsReplacedNotLost) {
  TempDir dir;
  ManualClock clock(absl::FromUnixMillis(1'800'000'000'123));
  StoreOptions options;
  options.clock = &clock;
  ServiceOptions service_options;
  service_options.clock = &clock;
  service_options.anonymous_ttl = absl::Seconds(600);
  absl::Time expires;
  {
    auto store = OpenSessionStore(Uri(dir), options);
    ASSERT_OK(store);
    SessionService service(store->get(), service_options);
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "old"}));
    expires = (*store)->Get({"acme", "old"})->expires_at;
  }
  {  // index it as an older version did: at the exact expiry
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {"expiry", {}},
        {"customers", {}},
        {"events", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), (dir.path() / "db").string(), families,
                                  &handles, &db).ok());
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[1]));
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    const std::string bucket_entry = it->key().ToString();
    it.reset();
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[1], bucket_entry).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1],
                        rocksdb_internal::ExpiryKey(expires, {"acme", "old"}), "").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  absl::Time later;
  {
    auto store = OpenSessionStore(Uri(dir), options);
    ASSERT_OK(store);
    // A write moves the expiry 5 minutes on: the old exact entry stays behind, stale.
    clock.Advance(absl::Minutes(5));
    SessionService service(store->get(), service_options);
    ASSERT_OK(service.SetAttribute({"acme", "old"}, "n", 1));
    later = (*store)->Get({"acme", "old"})->expires_at;
    // At the old expiry the stale entry is due; the session is live and keeps an entry.
    clock.Set(expires);
    ASSERT_OK((*store)->PurgeExpired());
    EXPECT_OK((*store)->Get({"acme", "old"}));
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.ExpiryEntries().size(), 1u);
  }
  auto store = OpenSessionStore(Uri(dir), options);
  ASSERT_OK(store);
  clock.Set(later);
  absl::StatusOr<int64_t> purged = (*store)->PurgeExpired();
  ASSERT_OK(purged);
  EXPECT_EQ(*purged, 1);
  EXPECT_STATUS((*store)->Get({"acme", "old"}), kNotFound);
}

// A store written before the customer index existed gains it when opened, once: the
// index is built from the sessions and recorded as built.
TEST(RocksDbStore, AStoreWithoutTheCustomerIndexGainsItOnceWhenOpened) {
  TempDir dir;
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    SessionService service(store->get(), ServiceOptions{});
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_OK(service.Create("acme", SessionContext{.session_id = id}));
      ASSERT_OK(service.AttachCustomer({"acme", id}, "c1"));
    }
    ASSERT_OK(service.Create("acme", SessionContext{.session_id = "anon"}));
  }
  {  // as an older version left it: no customer index at all
    RawDb raw(dir);
    ASSERT_TRUE(raw.ok());
    std::vector<std::string> entries = raw.CustomerEntries();
    EXPECT_EQ(entries.size(), 4u) << "three sessions and the built marker";
    for (const std::string& k : entries) {
      ASSERT_TRUE(raw.db()->Delete(rocksdb::WriteOptions(), raw.customers(), k).ok());
    }
  }
  {
    auto store = OpenSessionStore(Uri(dir), StoreOptions{});
    ASSERT_OK(store);
    absl::StatusOr<CustomerSessionPage> page =
        (*store)->ListCustomerSessions({"acme", "c1"}, "", 10);
    ASSERT_OK(page);
    ASSERT_EQ(page->sessions.size(), 3u);
    EXPECT_EQ(page->sessions[0].session_id, "a");
    EXPECT_EQ(page->sessions[2].session_id, "c");
  }
  RawDb raw(dir);
  ASSERT_TRUE(raw.ok());
  std::vector<std::string> entries = raw.CustomerEntries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries.back(), rocksdb_internal::kCustomerIndexBuilt) << "recorded as built";
}

TEST(RocksDbStore, SecondOpenOfSamePathFailsAtOnce) {
  TempDir dir;
  auto first = OpenSessionStore(Uri(dir), StoreOptions{});
  ASSERT_OK(first);
  const auto start = std::chrono::steady_clock::now();
  auto second = OpenSessionStore(Uri(dir), StoreOptions{});
  EXPECT_STATUS(second, kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another process"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RocksDbStore, UriOptionsAreChecked) {
  TempDir dir;
  EXPECT_OK(OpenSessionStore(Uri(dir, "?sync=true&cache_mb=8"), StoreOptions{}));
  EXPECT_STATUS(OpenSessionStore(Uri(dir, "?sync=maybe"), StoreOptions{}), kInvalidArgument);
  EXPECT_STATUS(OpenSessionStore(Uri(dir, "?bogus=1"), StoreOptions{}), kInvalidArgument);
  EXPECT_STATUS(OpenSessionStore("rocksdb:", StoreOptions{}), kInvalidArgument);
}

// --- crash durability --------------------------------------------------------------

TEST(RocksDbDurability, KillNineLosesNoAcknowledgedWrite) {
  const char* env = std::getenv("SESSIONCTX_CRASH_ROUNDS");
  const int rounds = env ? std::atoi(env) : 5;
  TempDir dir;
  const std::string uri = Uri(dir);
  std::mt19937 rng(std::random_device{}());
  std::map<std::string, int64_t> acked;
  int64_t total_acks = 0;
  for (int round = 0; round < rounds; ++round) {
    testing::KillWriterOnce(uri, round, rng, acked, &total_acks);
    if (HasFatalFailure()) return;
    auto store = OpenSessionStore(uri, StoreOptions{});
    ASSERT_OK(store);
    for (const auto& [session, version] : acked) {
      absl::StatusOr<SessionContext> s = (*store)->Get({"acme", session});
      ASSERT_OK(s);
      EXPECT_GE(s->version, version) << session;
    }
    ASSERT_OK((*store)->ForEach([](const SessionKey&, const SessionContext&) { return true; }));
  }
  EXPECT_GT(total_acks, 0);
  std::printf("crash rounds: %d, acknowledged writes checked: %lld\n", rounds,
              static_cast<long long>(total_acks));
}

}  // namespace
}  // namespace sessionctx
