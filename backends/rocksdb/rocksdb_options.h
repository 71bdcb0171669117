// The RocksDB engine settings of the rocksdb: backend, in one place: what the store
// opens with, and what a benchmark's bare RocksDB opens with so that a ratio of the
// two compares the same engine doing the same work (bench/matrix_bench.cc).
#ifndef SESSIONCTX_BACKENDS_ROCKSDB_ROCKSDB_OPTIONS_H_
#define SESSIONCTX_BACKENDS_ROCKSDB_ROCKSDB_OPTIONS_H_

#include <cstdint>

#include "rocksdb/options.h"

namespace sessionctx::backend {

// EngineOptions: create_if_missing, 2 background threads (IncreaseParallelism(2)),
// and every column family's table with an LRU block cache of `cache_mb` MiB and a
// bloom filter of 10 bits per key, and a whole-key bloom filter over each memtable
// (2 % of the write buffer); compression and WAL settings are RocksDB's
// defaults (Snappy; sync=false unless a write asks for it).
rocksdb::Options EngineOptions(int64_t cache_mb);

}  // namespace sessionctx::backend

#endif  // SESSIONCTX_BACKENDS_ROCKSDB_ROCKSDB_OPTIONS_H_
