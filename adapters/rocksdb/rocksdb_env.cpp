#include "adapters/rocksdb/rocksdb_env.hpp"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace cascade::adapters {
namespace {

// A file whose writes never fail as far as RocksDB can tell: a failed one
// is dropped. Only the info LOG is written through it.
class BestEffortFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  explicit BestEffortFile(std::unique_ptr<rocksdb::FSWritableFile> file)
      : FSWritableFileOwnerWrapper(std::move(file)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Append(data, options, dbg));
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Append(data, options, info, dbg));
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Flush(options, dbg));
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Sync(options, dbg));
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Fsync(options, dbg));
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return dropped(FSWritableFileOwnerWrapper::Close(options, dbg));
  }

 private:
  static rocksdb::IOStatus dropped(rocksdb::IOStatus status) {
    status.PermitUncheckedError();
    return rocksdb::IOStatus::OK();
  }
};

// RocksDB's own logger (FileSystem::NewLogger, an EnvLogger) over files that
// are written best effort.
class InfoLogFiles final : public rocksdb::FileSystemWrapper {
 public:
  explicit InfoLogFiles(const std::shared_ptr<rocksdb::FileSystem>& base) : FileSystemWrapper(base) {}

  const char* Name() const override { return "CascadeInfoLogFiles"; }

  rocksdb::IOStatus NewLogger(const std::string& name, const rocksdb::IOOptions& options,
                              std::shared_ptr<rocksdb::Logger>* result, rocksdb::IODebugContext* dbg) override {
    // The base class's implementation, not the wrapper's forwarding: it
    // opens the file with this->NewWritableFile.
    return FileSystem::NewLogger(name, options, result, dbg);
  }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus opened = FileSystemWrapper::NewWritableFile(name, options, result, dbg);
    if (opened.ok()) *result = std::make_unique<BestEffortFile>(std::move(*result));
    return opened;
  }
};

// `base` for every file, except that the info LOG is written best effort.
class CascadeFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit CascadeFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base), info_log_files_(std::make_shared<InfoLogFiles>(base)) {}

  const char* Name() const override { return "CascadeFileSystem"; }

  rocksdb::IOStatus NewLogger(const std::string& name, const rocksdb::IOOptions& options,
                              std::shared_ptr<rocksdb::Logger>* result, rocksdb::IODebugContext* dbg) override {
    return info_log_files_->NewLogger(name, options, result, dbg);
  }

 private:
  std::shared_ptr<InfoLogFiles> info_log_files_;
};

}  // namespace

rocksdb::Env* rocksdb_env() {
  // Never destroyed, like rocksdb::Env::Default(): databases closed by
  // static destructors may still use it.
  static rocksdb::Env* const env = rocksdb_env(rocksdb::FileSystem::Default()).release();
  return env;
}

std::unique_ptr<rocksdb::Env> rocksdb_env(std::shared_ptr<rocksdb::FileSystem> base) {
  return rocksdb::NewCompositeEnv(std::make_shared<CascadeFileSystem>(base));
}

}  // namespace cascade::adapters
