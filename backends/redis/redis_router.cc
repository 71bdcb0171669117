#include "backends/redis/redis_router.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/redis/redis_record.h"

namespace sessionctx::redis {
namespace {

// Each command is sent at most this many times; between tries the back-off doubles
// from kFirstBackOff (25, 50, 100, 200, 400 ms: about 0.8 s in all, enough for a
// slot's move to finish, not for a failover: that answers 503 until it is done).
constexpr int kMaxTries = 6;
constexpr absl::Duration kFirstBackOff = absl::Milliseconds(25);

constexpr std::array<uint16_t, 256> Crc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16 = Crc16Table();

// What a node's error reply asks of the router.
enum class Redirect { kNone, kMoved, kAsk, kRetry };

Redirect RedirectOf(const redisReply* r, int* slot, std::string* host, int* port) {
  if (r->type != REDIS_REPLY_ERROR) return Redirect::kNone;
  const absl::string_view e = Str(r);
  if (absl::StartsWith(e, "TRYAGAIN") || absl::StartsWith(e, "CLUSTERDOWN"))
    return Redirect::kRetry;
  const bool moved = absl::StartsWith(e, "MOVED ");
  if (!moved && !absl::StartsWith(e, "ASK ")) return Redirect::kNone;
  // MOVED <slot> <host>:<port>
  std::vector<absl::string_view> parts = absl::StrSplit(e, ' ');
  if (parts.size() != 3) return Redirect::kNone;
  const size_t colon = parts[2].rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(parts[1], slot) ||
      !absl::SimpleAtoi(parts[2].substr(colon + 1), port)) {
    return Redirect::kNone;
  }
  *host = std::string(parts[2].substr(0, colon));
  if (host->empty()) *host = "127.0.0.1";  // a node that does not know its address
  return moved ? Redirect::kMoved : Redirect::kAsk;
}

std::optional<int> IntOf(const redisReply* r) {
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<int>(r->integer);
  int n = 0;
  if (r->type == REDIS_REPLY_STRING && absl::SimpleAtoi(Str(r), &n)) return n;
  return std::nullopt;
}

// Field: in a RESP2 map (a flat array of names and values), the value of `name`.
const redisReply* Field(const redisReply* map, absl::string_view name) {
  if (map->type != REDIS_REPLY_ARRAY) return nullptr;
  for (size_t i = 0; i + 1 < map->elements; i += 2) {
    if (Str(map->element[i]) == name) return map->element[i + 1];
  }
  return nullptr;
}

absl::Status BadMap(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("redis cluster: ", what, " answered no slot map"));
}

}  // namespace

namespace {

uint16_t Crc16(absl::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char ch : bytes) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16[((crc >> 8) ^ ch) & 0xff]);
  }
  return crc;
}

}  // namespace

int KeySlot(absl::string_view key) {
  if (const size_t open = key.find('{'); open != absl::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != absl::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kSlots - 1);
}

int BucketOf(absl::string_view name) { return Crc16(name) % kBuckets; }

const std::string& BucketTag(int bucket) {
  static const std::vector<std::string>* tags = [] {
    constexpr int kShare = kSlots / kBuckets;
    constexpr absl::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
    auto* out = new std::vector<std::string>(kBuckets);
    int found = 0;
    std::string text;
    // Every text of `length` characters, in order, by counting in base 36.
    for (size_t length = 1; length <= 4 && found < kBuckets; ++length) {
      std::vector<size_t> digits(length, 0);
      for (;;) {
        text.clear();
        for (size_t d : digits) text.push_back(kAlphabet[d]);
        const int slot = Crc16(text) & (kSlots - 1);
        if (slot % kShare == kShare / 2 && (*out)[slot / kShare].empty()) {
          (*out)[slot / kShare] = text;
          ++found;
        }
        size_t i = length;
        while (i > 0 && ++digits[i - 1] == kAlphabet.size()) digits[--i] = 0;
        if (i == 0) break;
      }
    }
    return out;
  }();
  return (*tags)[bucket];
}

std::string SessionKeyName(absl::string_view prefix, bool bucketed,
                           absl::string_view tenant, absl::string_view id) {
  if (!bucketed) return absl::StrCat(prefix, "{", tenant, "/", id, "}");
  const std::string name = absl::StrCat(tenant, "/", id);
  return absl::StrCat(prefix, "{", BucketTag(BucketOf(name)), "}", name);
}

absl::StatusOr<std::vector<SlotRange>> ParseClusterShards(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY) return BadMap("CLUSTER SHARDS");
  std::vector<SlotRange> out;
  for (size_t s = 0; s < r->elements; ++s) {
    const redisReply* slots = Field(r->element[s], "slots");
    const redisReply* nodes = Field(r->element[s], "nodes");
    if (slots == nullptr || nodes == nullptr || slots->type != REDIS_REPLY_ARRAY ||
        nodes->type != REDIS_REPLY_ARRAY) {
      return BadMap("CLUSTER SHARDS");
    }
    // The shard's master: the one online, else any (a failed master still owns its
    // slots until a replica takes them over).
    const redisReply* master = nullptr;
    for (size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      const redisReply* role = Field(node, "role");
      const redisReply* health = Field(node, "health");
      if (role == nullptr || Str(role) != "master") continue;
      if (master == nullptr || (health != nullptr && Str(health) == "online"))
        master = node;
    }
    if (master == nullptr || slots->elements == 0) continue;
    const redisReply* endpoint = Field(master, "endpoint");
    const redisReply* ip = Field(master, "ip");
    const redisReply* port = Field(master, "port");
    SlotRange range;
    range.host =
        std::string(endpoint != nullptr && Str(endpoint) != "?" && !Str(endpoint).empty()
                        ? Str(endpoint)
                        : (ip != nullptr ? Str(ip) : ""));
    std::optional<int> p = port != nullptr ? IntOf(port) : std::nullopt;
    if (range.host.empty() || !p) return BadMap("CLUSTER SHARDS");
    range.port = *p;
    for (size_t i = 0; i + 1 < slots->elements; i += 2) {
      std::optional<int> first = IntOf(slots->element[i]),
                         last = IntOf(slots->element[i + 1]);
      if (!first || !last) return BadMap("CLUSTER SHARDS");
      range.first = *first;
      range.last = *last;
      out.push_back(range);
    }
  }
  return out;
}

absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY) return BadMap("CLUSTER SLOTS");
  std::vector<SlotRange> out;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
      return BadMap("CLUSTER SLOTS");
    }
    std::optional<int> first = IntOf(e->element[0]), last = IntOf(e->element[1]),
                       port = IntOf(e->element[2]->element[1]);
    if (!first || !last || !port) return BadMap("CLUSTER SLOTS");
    SlotRange range{*first, *last, std::string(Str(e->element[2]->element[0])), *port};
    if (range.host.empty()) range.host = "127.0.0.1";
    out.push_back(std::move(range));
  }
  return out;
}

Router::Router(RedisOptions options) : options_(std::move(options)) {
  if (options_.cluster) {
    owners_ = std::make_unique<std::array<std::atomic<Node*>, kSlots>>();
    for (std::atomic<Node*>& owner : *owners_) owner.store(nullptr);
  } else {
    single_ = NodeAt(options_.host, options_.port);
  }
}

Router::~Router() = default;

Router::Node* Router::NodeAt(const std::string& host, int port) {
  const std::string name = absl::StrCat(host, ":", port);
  std::lock_guard<std::mutex> lock(nodes_mu_);
  std::unique_ptr<Node>& node = nodes_[name];
  if (node == nullptr) {
    node = std::make_unique<Node>();
    node->name = name;
    RedisOptions at = options_;
    at.host = host;
    at.port = port;
    node->pool = std::make_unique<Pool>(std::move(at));
  }
  return node.get();
}

Router::Node* Router::Owner(absl::string_view key) const {
  if (single_ != nullptr) return single_;
  return (*owners_)[KeySlot(key)].load(std::memory_order_acquire);
}

absl::Status Router::ReadMap(Node* from) {
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Open(from->pool->options());
  if (!conn.ok()) return conn.status();
  Command shards;
  shards.Add("CLUSTER").Add("SHARDS");
  absl::StatusOr<Reply> r = (*conn)->Call(shards);
  if (!r.ok()) return r.status();
  absl::StatusOr<std::vector<SlotRange>> ranges;
  if ((*r)->type == REDIS_REPLY_ERROR) {  // a server before Redis 7
    Command slots;
    slots.Add("CLUSTER").Add("SLOTS");
    r = (*conn)->Call(slots);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) return ReplyError(Str(r->get()));
    ranges = ParseClusterSlots(r->get());
  } else {
    ranges = ParseClusterShards(r->get());
  }
  if (!ranges.ok()) return ranges.status();
  if (ranges->empty()) {
    return absl::UnavailableError(
        absl::StrCat("redis cluster: ", from->name, " knows no slot served"));
  }
  std::vector<Node*> owners(kSlots, nullptr);
  for (const SlotRange& range : *ranges) {
    Node* node = NodeAt(range.host, range.port);
    for (int slot = std::max(0, range.first); slot <= std::min(kSlots - 1, range.last);
         ++slot) {
      owners[slot] = node;
    }
  }
  for (int slot = 0; slot < kSlots; ++slot) {
    (*owners_)[slot].store(owners[slot], std::memory_order_release);
  }
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Router::Discover() {
  if (!options_.cluster) return absl::OkStatus();
  absl::Status last;
  for (const auto& [host, port] : options_.seeds) {
    last = ReadMap(NodeAt(host, port));
    if (last.ok()) {
      refreshed_at_ = absl::Now();
      return last;
    }
  }
  return absl::UnavailableError(
      absl::StrCat("redis cluster: no seed node gave the slot map: ", last.message()));
}

void Router::Refresh(absl::Time since) {
  if (!options_.cluster) return;
  std::lock_guard<std::mutex> lock(refresh_mu_);
  if (refreshed_at_ > since) return;  // someone read the map since the caller looked
  refreshed_at_ = absl::Now();
  // Ask the masters known, then the seeds: the first answer wins.
  std::vector<Node*> candidates = MasterNodes();
  for (const auto& [host, port] : options_.seeds)
    candidates.push_back(NodeAt(host, port));
  {
    std::lock_guard<std::mutex> nodes_lock(nodes_mu_);
    for (const auto& [name, node] : nodes_) candidates.push_back(node.get());
  }
  for (Node* node : candidates) {
    if (ReadMap(node).ok()) return;
  }
}

std::vector<Router::Node*> Router::MasterNodes() const {
  if (single_ != nullptr) return {single_};
  std::vector<Node*> out;
  Node* previous = nullptr;
  for (const std::atomic<Node*>& owner : *owners_) {
    Node* node = owner.load(std::memory_order_acquire);
    if (node == nullptr || node == previous) continue;
    previous = node;
    if (std::find(out.begin(), out.end(), node) == out.end()) out.push_back(node);
  }
  return out;
}

std::vector<Pool*> Router::Masters() {
  std::vector<Pool*> out;
  for (Node* node : MasterNodes()) out.push_back(node->pool.get());
  return out;
}

absl::StatusOr<Router::Batch> Router::Exec(const std::vector<absl::string_view>& keys,
                                           const std::vector<Command*>& commands,
                                           Command* trailer, bool idempotent) {
  Batch out;
  out.replies.resize(commands.size());
  std::vector<size_t> pending(commands.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::vector<Node*> asked(commands.size(), nullptr);  // ASK: this time, that node
  std::optional<Command> asking;  // made when a node first answers ASK
  absl::Status last = absl::UnavailableError("redis cluster: a slot has no master");
  absl::Duration back_off = kFirstBackOff;
  bool wait = false;     // back off before the next try
  bool refresh = false;  // and read the slot map again first
  absl::Time sent_at = absl::Now();

  for (int tries = 0; !pending.empty(); ++tries) {
    if (tries == kMaxTries) {
      return absl::UnavailableError(
          absl::StrCat("redis cluster: still redirected or "
                       "refused after ",
                       kMaxTries, " tries: ", last.message()));
    }
    if (wait) {
      absl::SleepFor(back_off);
      back_off *= 2;
    }
    if (refresh) Refresh(sent_at);  // unless someone read the map since
    wait = refresh = false;
    sent_at = absl::Now();

    // The commands by node, each node's in one pipeline (ASKING before an asked one).
    struct Group {
      Node* node = nullptr;
      std::vector<Command*> sent;
      std::vector<ptrdiff_t> what;  // the command's index; -1 ASKING, -2 the trailer
      std::optional<Pool::Lease> lease;
      absl::Status failed;
      bool reached = false;  // the commands went out: their fate is the node's
    };
    std::vector<Group> groups;
    std::vector<size_t> again;
    absl::Status lost;  // a command that may have run failed on its connection
    for (size_t i : pending) {
      Node* node = asked[i] != nullptr ? asked[i] : Owner(keys[i]);
      if (node == nullptr) {
        again.push_back(i);
        refresh = wait = true;
        continue;
      }
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const Group& x) { return x.node == node; });
      if (g == groups.end()) {
        groups.emplace_back().node = node;
        g = std::prev(groups.end());
      }
      if (asked[i] != nullptr) {
        if (!asking) asking.emplace().Add("ASKING");
        g->sent.push_back(&*asking);
        g->what.push_back(-1);
      }
      g->sent.push_back(commands[i]);
      g->what.push_back(static_cast<ptrdiff_t>(i));
    }
    for (Group& g : groups) {
      if (trailer != nullptr) {
        g.sent.push_back(trailer);
        g.what.push_back(-2);
      }
      absl::StatusOr<Pool::Lease> lease = g.node->pool->Acquire();
      if (!lease.ok()) {
        g.failed = lease.status();
        continue;
      }
      g.lease.emplace(*std::move(lease));
      g.node->pool->CountRoundTrip();
      g.reached = true;  // from here on a command may have run
      g.failed = (*g.lease)->Send(g.sent);
    }
    for (Group& g : groups) {
      absl::StatusOr<std::vector<Reply>> replies =
          g.failed.ok() ? (*g.lease)->Receive(g.sent.size())
                        : absl::StatusOr<std::vector<Reply>>(g.failed);
      g.lease.reset();
      if (!replies.ok()) {
        last = replies.status();
        refresh = wait = true;
        if (g.reached && !idempotent) {  // it may have run: not again
          lost = last;
          continue;  // but every other node's replies are read off its connection
        }
        for (ptrdiff_t w : g.what) {
          if (w >= 0) again.push_back(static_cast<size_t>(w));
        }
        continue;
      }
      for (size_t k = 0; k < g.what.size(); ++k) {
        const ptrdiff_t w = g.what[k];
        Reply& r = (*replies)[k];
        if (w == -2) {
          out.trailers.push_back(std::move(r));
          continue;
        }
        if (w == -1) continue;  // ASKING's OK
        const size_t i = static_cast<size_t>(w);
        int slot = 0, port = 0;
        std::string host;
        switch (options_.cluster ? RedirectOf(r.get(), &slot, &host, &port)
                                 : Redirect::kNone) {
          case Redirect::kNone:
            out.replies[i] = std::move(r);
            break;
          case Redirect::kMoved:
            g.node->redirects.fetch_add(1, std::memory_order_relaxed);
            if (slot >= 0 && slot < kSlots) {
              (*owners_)[slot].store(NodeAt(host, port), std::memory_order_release);
            }
            asked[i] = nullptr;
            again.push_back(i);
            refresh = true;  // other slots may have moved with it
            last = absl::UnavailableError(absl::StrCat("redis cluster: ", Str(r.get())));
            break;
          case Redirect::kAsk:
            g.node->redirects.fetch_add(1, std::memory_order_relaxed);
            asked[i] = NodeAt(host, port);
            again.push_back(i);
            last = absl::UnavailableError(absl::StrCat("redis cluster: ", Str(r.get())));
            break;
          case Redirect::kRetry:
            asked[i] = nullptr;
            again.push_back(i);
            refresh = wait = true;
            last = ReplyError(Str(r.get()));
            break;
        }
      }
    }
    if (!lost.ok()) {
      Refresh(sent_at);  // the next call finds the node that took over, if any
      return lost;
    }
    // One server has no replica to wait for: its outage answers at once.
    if (!options_.cluster && !again.empty()) return last;
    std::sort(again.begin(), again.end());
    pending.swap(again);
  }
  return out;
}

absl::StatusOr<Reply> Router::Call(absl::string_view key, Command& command) {
  absl::StatusOr<Batch> batch = Exec({key}, {&command}, nullptr, /*idempotent=*/true);
  if (!batch.ok()) return batch.status();
  return std::move(batch->replies.front());
}

absl::Status Router::Ready() {
  if (options_.cluster) {
    for (int slot = 0; slot < kSlots; ++slot) {
      if ((*owners_)[slot].load(std::memory_order_acquire) != nullptr) continue;
      Refresh(absl::Now());
      if ((*owners_)[slot].load(std::memory_order_acquire) == nullptr) {
        return absl::UnavailableError(
            absl::StrCat("redis cluster: slot ", slot, " has no master"));
      }
    }
  }
  for (Pool* pool : Masters()) {
    absl::StatusOr<Pool::Lease> lease = pool->Acquire();
    if (!lease.ok()) {
      Refresh(absl::Now());
      return lease.status();
    }
    Command ping;
    ping.Add("PING");
    absl::StatusOr<Reply> r = (*lease)->Call(ping);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) return ReplyError(Str(r->get()));
  }
  return absl::OkStatus();
}

std::vector<StoreStat> Router::Stats() {
  if (single_ != nullptr) return single_->pool->Stats();
  std::map<Node*, int> served;
  for (const std::atomic<Node*>& owner : *owners_) {
    if (Node* node = owner.load(std::memory_order_acquire)) ++served[node];
  }
  std::vector<Node*> nodes;
  {
    std::lock_guard<std::mutex> lock(nodes_mu_);
    for (const auto& [name, node] : nodes_) nodes.push_back(node.get());
  }
  std::vector<StoreStat> out;
  for (Node* node : nodes) {
    const StoreStat::Labels labels = {{"node", node->name}};
    std::vector<StoreStat> pool = node->pool->Stats(labels);
    out.insert(out.end(), pool.begin(), pool.end());
    out.push_back({"sessionctx_redis_cluster_slots", "Slots the node serves as master",
                   static_cast<double>(served[node]), labels});
    out.push_back({"sessionctx_redis_cluster_redirects_total",
                   "MOVED and ASK redirects the node answered and the store followed",
                   static_cast<double>(node->redirects.load(std::memory_order_relaxed)),
                   labels});
  }
  out.push_back({"sessionctx_redis_cluster_map_refreshes_total",
                 "Times the slot map was read from the cluster",
                 static_cast<double>(refreshes_.load(std::memory_order_relaxed))});
  return out;
}

}  // namespace sessionctx::redis
