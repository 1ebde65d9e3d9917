// The RocksDB Env every database of a data directory opens with: the log's
// (RocksStore), and — passed in by the composition roots (adapters/runtime,
// tools/kafka_wiring) — the projections' and the CDEvents egress state's.
//
// It is RocksDB's own, except for the diagnostic LOG file each database
// writes: a line that cannot be written there (a full disk) is dropped, and
// RocksDB is told it was written. RocksDB 7.8 (Debian's, built with its
// assertions on) aborts the whole process when it logs a line to a LOG whose
// previous write failed — which on a full disk is the next line RocksDB has
// to say, typically that a write failed. Nothing reads the LOG back, so the
// error it hides is one nobody acts on; the failures that matter reach
// Cascade as the status of the write that met them.
#pragma once

#include <memory>

namespace rocksdb {
class Env;
class FileSystem;
}  // namespace rocksdb

namespace cascade::adapters {

// Over RocksDB's default file system; lives as long as the process.
rocksdb::Env* rocksdb_env();

// Over `base` (e.g. a file system that injects faults); must outlive every
// database opened with it.
std::unique_ptr<rocksdb::Env> rocksdb_env(std::shared_ptr<rocksdb::FileSystem> base);

}  // namespace cascade::adapters
