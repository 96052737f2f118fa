// Token shards in llm.c's format: how training and validation tokens reach the trainer,
// whether `attn data prepare` wrote them or a user brought them (FineWeb-10B as llm.c's
// dev/data scripts produce it).
//
// The format: a header of 256 little-endian int32 (1024 bytes): [0] the magic number
// 20240520, [1] the version 1, [2] the number of tokens N, the rest unused (zero when we
// write). Then N little-endian uint16 GPT-2 token ids, nothing after them. Every document
// in a shard starts with <|endoftext|> (50256); a document may continue into the next shard.
//
// What it is: a strict reader (every inconsistency is a DataError naming the file and saying
// what was found and what was expected), a cheap header-only inspection, a read-only memory
// map of a validated shard (what training reads: llm.c's shards are 100M tokens = 200 MB
// each, FineWeb-10B is 100 of them, so they are never read whole), and an atomic writer.
// What it is not: a reader of llm.c's other files (Llama 3 shards with uint32 tokens,
// HellaSwag eval files): those are recognised by their magic and rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "support/AtomicWrite.h"

namespace attn::data {

constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersion = 1;
/// The header: 256 int32.
constexpr size_t kShardHeaderInts = 256;
constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
/// The most tokens a header can declare (its count is an int32).
constexpr int64_t kMaxShardTokens = INT32_MAX;

/// Writes `tokens` as a shard at `path`, atomically: the bytes go to a temporary file in
/// the same directory, which is flushed to disk and then renamed over `path`. A crash or an
/// error never leaves a half-written shard under `path`, and on failure an existing file
/// there is untouched and the temporary file is removed. Throws DataError when there are
/// more than kMaxShardTokens tokens or the file cannot be written.
void writeShard(const std::string& path, const std::vector<uint16_t>& tokens);

/// The same for token ids as the tokenizer gives them; throws DataError (writing nothing)
/// when one is above 65535, naming its index and value.
void writeShard(const std::string& path, const std::vector<uint32_t>& tokens);

/// Reads and validates the shard at `path`; returns its tokens. Throws DataError naming the
/// file when it is missing or unreadable, shorter than the header, has another magic number
/// or version, or holds more or fewer token bytes than the header declares.
std::vector<uint16_t> readShard(const std::string& path);

/// What the header of a valid shard says.
struct ShardInfo {
  int64_t tokens = 0;
};

/// Reads only the header (and the file's size): the same checks as readShard, without
/// reading the tokens.
ShardInfo inspectShard(const std::string& path);

/// A validated shard mapped read-only (mmap): its tokens are read from the page cache as they
/// are touched, so a run over many shards holds only the pages it is using. Move-only.
///
/// A mapped file that another process truncates while it is mapped would fault (SIGBUS) on
/// the lost pages: shards are written atomically (a new file renamed over the old one, which
/// leaves the mapped inode whole), so only an in-place truncation by hand can do this.
class MappedShard {
 public:
  /// Opens and maps the shard at `path` after the same checks as readShard (same errors).
  static MappedShard open(const std::string& path);
  MappedShard(MappedShard&& other) noexcept;
  MappedShard& operator=(MappedShard&& other) noexcept;
  MappedShard(const MappedShard&) = delete;
  MappedShard& operator=(const MappedShard&) = delete;
  ~MappedShard();

  const std::string& path() const { return path_; }
  int64_t size() const { return tokens_; }
  /// The tokens (valid while this object lives); null for an empty shard.
  const uint16_t* tokens() const;
  /// Drops the pages holding tokens [begin, end) from this process's resident memory (they
  /// stay in the page cache; touching them again maps them back): a reader that copied a
  /// window out says so, and resident memory stays at a batch's pages however long the run.
  void release(int64_t begin, int64_t end) const;

 private:
  MappedShard() = default;
  std::string path_;
  void* base_ = nullptr;  // the whole file, header included
  size_t bytes_ = 0;
  int64_t tokens_ = 0;
};

/// A range of bytes to write.
using ByteSpan = support::ByteSpan;

/// support::writeFileAtomically (a fresh O_EXCL | O_NOFOLLOW temporary file in the same
/// directory, every write checked, fsync, rename; a symbolic link at `path` is refused),
/// throwing DataError naming `path` instead of support::FileError. Kept for the callers that
/// speak DataError.
void writeFileAtomically(const std::string& path, std::initializer_list<ByteSpan> pieces);

/// A directory being written by `attn data prepare` or `attn data synth` holds
/// ".attn-writing" until every shard is in place and the stale ones are gone: shards are
/// written one at a time (each atomically), so an interrupted run leaves this preparation's
/// first shards beside an earlier one's last. Writers create it first (WritingMarker) and
/// remove it last; readers (refuseUnfinished) refuse such a directory with a clear error
/// rather than train on a mixture.
constexpr const char* kWritingMarker = ".attn-writing";

/// Creates `dir`/.attn-writing on construction (saying which command writes); remove() when
/// the directory is complete. A run that throws or is killed leaves it in place.
class WritingMarker {
 public:
  WritingMarker(const std::string& dir, const std::string& command);
  void remove();

 private:
  std::string path_;
};

/// Throws DataError when `dir` holds .attn-writing: "DIR: an interrupted `attn data
/// prepare` left this directory incomplete ...".
void refuseUnfinished(const std::string& dir);

}  // namespace attn::data
