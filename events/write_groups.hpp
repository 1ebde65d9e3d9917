// How every RocksDB Cascade opens groups its writes under ThreadSanitizer.
#pragma once

namespace cascade::events {

// Called on the options of every RocksDB Cascade opens (the event log's, the
// projections', the CDEvents egress state). In a ThreadSanitizer build
// (`tools/dev test --tsan`) it limits every write group to its leader:
// Debian's RocksDB is not built with TSAN, so when a group's leader copies a
// follower's WriteBatch into the WAL and the memtable, the hand-off (RocksDB's
// own atomics) is invisible and TSAN reports the copy as a race in whatever
// Cascade code filled the batch. Writes from many threads still run
// concurrently; only RocksDB's batching of them is off, and only under TSAN.
// Other builds: unchanged. A template so that this folder needs no RocksDB
// header: `Options` is rocksdb::DBOptions or a class derived from it.
template <typename Options>
void without_cross_thread_write_groups_under_tsan([[maybe_unused]] Options& options) {
#if defined(__SANITIZE_THREAD__)
  // A leader's group grows only while it stays within this size, and no batch
  // is that small (RocksDB: WriteThread::EnterAsBatchGroupLeader).
  options.max_write_batch_group_size_bytes = 1;
#endif
}

}  // namespace cascade::events
