// The redis:// backend's Lua scripts: one per write, each atomic on the server (a
// script runs alone), each touching one key (KEYS[1], the session's hash), so that
// the same scripts run on a Redis Cluster unchanged.
//
// A session is one hash:
//   v            version                 ct, mt   createdAt, modifiedAt (Unix ms)
//   x            expiresAt (Unix ms; absent: a customer session, never expires)
//   n            the record's JSON size in bytes, kept exact by every write
//   k            how many custom attributes the context holds
//   customerId, siteCode, …   the base fields, each as its quoted JSON string
//   "name"       one custom attribute: the field is its quoted JSON key, the value
//                its JSON text (so a read joins them into the context as they are)
// The record's text is {"sessionId":…,<base fields>,"context":{…},"metadata":{…}};
// its size is the sum of its parts, so a script moves `n` by what it changes:
// a member `"key":value` and its comma take #key + #value + 2 bytes, an empty context
// "{}" one byte more than a non-empty one's braces, and the version its digits.
//
// A customer's sessions are indexed apart, in a sorted set per customer,
//   "customer:{<tenant>/<customerId>}"   member: session id, score: its expiry (Unix ms;
//                                        inf: never); expires with its last session
// which lives in its own slot: in a cluster no script can write it and a session
// together. So the index may name more than the customer's sessions, never fewer: a
// write that gives a session a customer adds it to the index before the session
// script runs and again after (should a reader have pruned it in between); a session
// leaves the index after the write that took it out. A reader checks each session it
// names against the session's own customerId and prunes what no longer matches.
//
// The event feed (when the store keeps one; docs/events.md): every write script also
// appends its event to its bucket's Stream, in the same script, so a write and its
// event land together or not at all. A standalone server is one bucket, with the keys
// "events" and "expiry"; a cluster has kBuckets (redis_router.h), each with the keys
// "events:{<tag>}" and "expiry:{<tag>}" in the slot of its sessions:
//   "events"   entry id 0-N (N the event's position: 1, 2, … per stream, from XADD
//              "0-*"), fields s "<tenant>/<sessionId>", t the type (c created, u
//              changed, d deleted, x expired, e ended), v the version, at the write's
//              time (Unix ms, the store's clock); trimmed to about the count kept
//              (MAXLEN ~) by each append, exactly and by age by the sweep
//   "expiry"   sorted set: "<tenant>/<sessionId>" of each anonymous session, score
//              its expiry (Unix ms)
// and the sweep (PurgeExpired) deletes the sessions due in "expiry", each with its
// `expired` event. So that a session is still there to sweep (with its version)
// after its expiry, Redis's own expiry then falls a grace period later.
//
// Every script answers {code, value}: see ScriptCode. Create, replace, delete and
// import add the customerId the key held before (quoted; '' none), for the index.
#ifndef SESSIONCTX_BACKENDS_REDIS_REDIS_SCRIPTS_H_
#define SESSIONCTX_BACKENDS_REDIS_REDIS_SCRIPTS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace sessionctx::redis {

// What a script answered, the first element of its reply.
enum ScriptCode {
  kOk = 0,         // value: the new version (create: 1; delete, import: 0)
  kNotFound = 1,   // missing or expired (by the caller's clock)
  kExists = 2,     // create: a live session holds the key; value: its version
  kConflict = 3,   // value: the current version
  kGuard = 4,      // the session belongs to another customer
  kTooLarge = 5,   // value: the record's size after the write
  kUnchanged = 6,  // removing an absent attribute: nothing written; value: the version
  kMerge = 7,    // PATCH: a context member to merge into a stored object; nothing written
  kSkipped = 8,  // import: a newer live session kept
};

// The scripts, in the order of Script below.
// kEnd deletes a session of one customer; kIndex adds a session to a customer's index
// (KEYS[1] is the index). With a feed, the session scripts (kCreate … kEnd) take
// KEYS[2] "events" and KEYS[3] "expiry"; kSweep and kReadEvents (below) take the same
// three keys (KEYS[1] the stream again).
enum Script {
  kCreate,
  kReplace,
  kDelete,
  kAttribute,
  kPatch,
  kImport,
  kEnd,
  kIndex,
  // sweep: ARGV now, the most sessions to expire, the count of events kept ('' no
  // trim), the oldest event time kept (Unix ms), the bucket's tag (a cluster).
  // Expires what is due and trims the stream; answers {0, sessions expired}.
  kSweep,
  // read events: ARGV after ('' the newest), limit, tenant ('' every tenant).
  // Answers {0, next, then per event: position, "<tenant>/<id>", type, version, at}
  // or {1, newest, oldest kept ('' none)} when `after` was trimmed or never given.
  kReadEvents,
  kScriptCount
};

// ScriptSettings: what the scripts of one store are built with.
struct ScriptSettings {
  bool events = false;         // keep a feed (the session scripts append to it)
  int64_t keep = 1000000;      // events kept (MAXLEN ~ on each append)
  int64_t grace_ms = 3600000;  // Redis's expiry this long after the session's
  std::string prefix;          // the keys' prefix (a session's key from its name)
  bool bucketed = false;       // a cluster's layout: "<prefix>{<tag>}<tenant>/<id>"
};

// The Lua source of `script` (with the shared prelude) for a store with `settings`.
std::string ScriptSource(Script script, const ScriptSettings& settings);

}  // namespace sessionctx::redis

#endif  // SESSIONCTX_BACKENDS_REDIS_REDIS_SCRIPTS_H_
