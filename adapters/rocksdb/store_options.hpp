// The RocksDB options the store opens its database with, in one place: the
// store uses them, and the benchmarks open their raw baseline with the very
// same ones so a ratio compares like with like.
#pragma once

#include <rocksdb/options.h>

namespace cascade::adapters {

rocksdb::Options store_db_options();
// For the event_ids column family (bloom filters); the others use defaults.
rocksdb::ColumnFamilyOptions event_ids_family_options();

}  // namespace cascade::adapters
