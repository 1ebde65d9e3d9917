// The FileSystem behind WriteFaults: RocksDB's own, with every write path
// wrapped so that it can fail as a full disk does. Going through RocksDB's
// FileSystem (rather than failing the store's calls) means RocksDB's own
// reaction to a failed write — its background error, the writes it then
// refuses — is what the tests see, as with a real disk.
#include "adapters/rocksdb/rocks_internal.hpp"
#include "adapters/rocksdb/rocksdb_env.hpp"
#include "adapters/rocksdb/write_faults.hpp"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace cascade::adapters::rocks {
namespace {

rocksdb::IOStatus no_space(WriteFaults& faults) {
  faults.count_refusal();
  return rocksdb::IOStatus::NoSpace("injected write fault (WriteFaults)");
}

class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::shared_ptr<WriteFaults> faults)
      : FSWritableFileOwnerWrapper(std::move(file)), faults_(std::move(faults)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, options, dbg);
  }

 private:
  std::shared_ptr<WriteFaults> faults_;
};

class FaultyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base, std::shared_ptr<WriteFaults> faults)
      : FileSystemWrapper(base), faults_(std::move(faults)) {}

  const char* Name() const override { return "CascadeFaultyFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return wrap(FileSystemWrapper::NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return wrap(FileSystemWrapper::ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    if (faults_->failing()) return no_space(*faults_);
    return wrap(FileSystemWrapper::ReuseWritableFile(name, old_name, options, result, dbg), result);
  }

 private:
  rocksdb::IOStatus wrap(rocksdb::IOStatus opened, std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (opened.ok()) *result = std::make_unique<FaultyWritableFile>(std::move(*result), faults_);
    return opened;
  }

  std::shared_ptr<WriteFaults> faults_;
};

}  // namespace

std::unique_ptr<rocksdb::Env> faulty_env(std::shared_ptr<WriteFaults> faults) {
  // Cascade's Env over the faulty files: the info LOG fails too, and is
  // written best effort as on a real disk.
  return adapters::rocksdb_env(
      std::make_shared<FaultyFileSystem>(rocksdb::FileSystem::Default(), std::move(faults)));
}

}  // namespace cascade::adapters::rocks
