// The RocksDB record decoder on arbitrary bytes (what is read back from disk): session
// texts, base records, attribute values and keys. A failed decode is DataLoss; a successful one
// encodes again to bytes that decode to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "backends/rocksdb/record_codec.h"
#include "src/json_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessionctx;
  using namespace sessionctx::rocksdb_internal;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<Base> base = DecodeBase(bytes); base.ok()) {
    const std::string again = EncodeBase(*base);
    absl::StatusOr<Base> back = DecodeBase(again);
    if (!back.ok() || EncodeBase(*back) != again) std::abort();
  } else if (!absl::IsDataLoss(base.status())) {
    std::abort();
  }
  if (absl::StatusOr<Json> value = DecodeValue(bytes); value.ok()) {
    const std::string again = EncodeValue(*value);
    absl::StatusOr<Json> back = DecodeValue(again);
    if (!back.ok() || EncodeValue(*back) != again) std::abort();
  } else if (!absl::IsDataLoss(value.status())) {
    std::abort();
  }
  // A value's stored text: ValueText joins it into answers as it is, so it must be
  // exactly what a strict parser accepts (within the depth limit).
  if (absl::StatusOr<std::string> text = ValueText(bytes); text.ok()) {
    if (!Json::accept(*text)) std::abort();
  } else if (!absl::IsDataLoss(text.status())) {
    std::abort();
  }
  // Our scanner against nlohmann's (which stops at a NUL byte, so such inputs are
  // left out; ours refuses them).
  if (bytes.find('\0') == std::string::npos) {
    const bool strict = Json::accept(bytes);
    const bool ours = backend::IsJsonValue(bytes, 1'000'000);
    if (strict != ours) std::abort();
  }
  if (absl::StatusOr<std::shared_ptr<const SessionText>> text = DecodeText(bytes); text.ok()) {
    if (EncodeText(**text) != bytes) std::abort();  // the layout is exact
    (void)(*text)->Fields();
    (void)(*text)->Record();
  } else if (!absl::IsDataLoss(text.status())) {
    std::abort();
  }
  if (std::optional<ParsedKey> key = ParseRecordKey(bytes)) {
    const std::string again = key->is_base ? BaseKey(key->key) : AttributeKey(key->key, key->attribute);
    if (again != bytes) std::abort();
  }
  if (std::optional<ParsedExpiry> expiry = ParseExpiryKey(bytes)) {
    (void)expiry;
  }
  return 0;
}
