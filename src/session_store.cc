#include "sessionctx/session_store.h"

#include "sessionctx/write_rules.h"

namespace sessionctx {

absl::StatusOr<AttributeResult> SessionStore::UpdateAttribute(const SessionKey& key,
                                                              const AttributeWrite& write) {
  // Optimistic loop: a concurrent writer makes the compare-and-set fail, and the change
  // is applied again on what that writer left. Every round either succeeds or observes
  // a newer version, so the loop ends as soon as this writer is not overtaken.
  while (true) {
    absl::StatusOr<SessionContext> current = Get(key);
    if (!current.ok()) return current.status();
    SessionContext& record = *current;
    const int64_t expected = record.version;
    if (write.value) {
      SetAttribute(record, write.name, *write.value);
    } else if (!RemoveAttribute(record, write.name)) {
      return AttributeResult{expected, false};
    }
    StampUpdate(record, WriteStamp{write.now, write.anonymous_ttl});
    if (absl::Status st = CheckRecordSize(record, write.max_record_bytes); !st.ok()) {
      return st;
    }
    absl::Status st = CompareAndSet(key, expected, record);
    if (st.ok()) return AttributeResult{record.version, true};
    if (!absl::IsAborted(st)) return st;
  }
}

}  // namespace sessionctx
