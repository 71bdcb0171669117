// How the rocksdb: backend lays a session out in RocksDB. Internal to the backend.
//
// Column family "default":
//   "<tenant>/<sessionId>\x00"        -> a small session: its wire JSON text (it starts
//                                        with '{') + a trailer ending in 0x04
//                                        (EncodeText)
//                                     or a session with a large context: 0x02 + compact
//                                        binary base record, attributes under their keys
//   "<tenant>/<sessionId>\x01<name>"  -> 0x01 + MessagePack of one context attribute
// Column family "expiry" (anonymous sessions only):
//   8-byte big-endian expiry (ms since epoch) + "<tenant>/<sessionId>" -> ""
// Column family "customers" (sessions with a customerId), written in the same
// WriteBatch as the session:
//   "<tenant>/<customerId>\x00<sessionId>" -> ""
//   kCustomerIndexBuilt -> ""   once the index covers the sessions written before it
// Column family "events" (the event feed), written in the same WriteBatch as the
// session:
//   8-byte big-endian position -> backend::EncodeEvent (event_support.h)
//   0xff x 8 + 0x01            -> 8-byte position: the highest one trimming dropped
//
// Tenant names hold no '/', session ids no control characters, so the separators are
// unambiguous. Attributes live under their own keys so that adding one is O(log n),
// not a rewrite of the whole context. The leading format byte lets the encoding evolve.
#ifndef SESSIONCTX_BACKENDS_ROCKSDB_RECORD_CODEC_H_
#define SESSIONCTX_BACKENDS_ROCKSDB_RECORD_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "rocksdb/slice.h"
#include "sessionctx/session_context.h"
#include "sessionctx/session_text.h"

namespace sessionctx::rocksdb_internal {

inline constexpr char kFormatMsgpackV1 = 0x01;  // attribute values (older databases)
inline constexpr char kFormatValueTextV3 = 0x03;  // attribute values as compact JSON text
inline constexpr char kFormatBaseV2 = 0x02;     // base records of spilled sessions
inline constexpr char kFormatTextV4 = 0x04;     // last byte of a whole-session text record
inline constexpr char kBaseMarker = 0x00;
inline constexpr char kAttributeMarker = 0x01;

// The base record: everything but `context`, plus the tracked JSON size.
struct Base {
  SessionContext fields;  // context left empty
  int64_t json_bytes = 0; // RecordBytes of the whole record, tracked by difference
};

std::string SessionPrefix(const SessionKey& key);  // "<tenant>/<sessionId>"
std::string BaseKey(const SessionKey& key);        // prefix + '\0'
std::string AttributePrefix(const SessionKey& key);  // prefix + '\1'
std::string AttributeKey(const SessionKey& key, const std::string& name);
std::string ExpiryKey(absl::Time expires_at, const SessionKey& key);
// CustomerPrefix: "<tenant>/<customerId>\0", the keys of one customer's sessions
// (customer ids hold no NUL); CustomerIndexKey: prefix + session id.
std::string CustomerPrefix(const std::string& tenant, const std::string& customer_id);
std::string CustomerIndexKey(const SessionKey& key, const std::string& customer_id);
// The "customers" key that records the index as built (no tenant starts with 0xff).
inline constexpr char kCustomerIndexBuilt[] =
    "\xff"
    "built";

// ParseRecordKey splits a "default" key; nullopt for a key of no known shape.
struct ParsedKey {
  SessionKey key;
  bool is_base = false;
  std::string attribute;  // when !is_base
};
std::optional<ParsedKey> ParseRecordKey(const std::string& raw);

// ExpiryKey's parts.
struct ParsedExpiry {
  int64_t expires_ms = 0;
  SessionKey key;
};
std::optional<ParsedExpiry> ParseExpiryKey(const std::string& raw);

std::string EncodeBase(const Base& base);
absl::StatusOr<Base> DecodeBase(const std::string& bytes);  // DataLoss when it fails

// A whole session kept as its wire text (SessionText) in its base key: the text, then
// the customer id, then a fixed trailer (context offsets, version, times, lengths,
// kFormatTextV4). A read is the text as stored; no field is re-rendered.
bool IsTextRecord(absl::string_view bytes);  // starts with '{'
std::string EncodeText(const SessionText& text);
// DecodeText takes the stored bytes (moved into the text). DataLoss when they do not
// frame a session text.
absl::StatusOr<std::shared_ptr<const SessionText>> DecodeText(std::string bytes);

// An attribute value: its compact JSON text behind kFormatValueTextV3, so a spilled
// session is read by joining texts, without a DOM. Values written as MessagePack
// (kFormatMsgpackV1) by older versions still decode.
std::string EncodeValue(const Json& value);
absl::StatusOr<Json> DecodeValue(const std::string& bytes);  // DataLoss when it fails
// ValueText: the value's JSON text (checked to be one JSON value of bounded depth,
// without building a DOM; MessagePack values are converted). DataLoss when it fails.
absl::StatusOr<std::string> ValueText(const rocksdb::Slice& bytes);

}  // namespace sessionctx::rocksdb_internal

#endif  // SESSIONCTX_BACKENDS_ROCKSDB_RECORD_CODEC_H_
