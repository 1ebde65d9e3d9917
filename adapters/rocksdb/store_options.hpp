// The RocksDB options the store opens its database with, in one place: the
// store uses them, and the benchmarks open their raw baseline with the very
// same ones so a ratio compares like with like.
#pragma once

#include <rocksdb/options.h>

#include <string>

namespace cascade::adapters {

rocksdb::Options store_db_options();
// The options of the column family named `family` (any name: a family the
// store does not know, such as a projection's, gets RocksDB's defaults).
rocksdb::ColumnFamilyOptions store_family_options(const std::string& family);

}  // namespace cascade::adapters
