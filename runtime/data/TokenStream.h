// The training tokens as one stream: the *_train_*.bin shards of a data directory in name
// order, memory-mapped (Shards.h: MappedShard), or tokens held in memory (tests, toy data).
//
// Why a stream and not a vector: FineWeb-10B is 10B tokens (20 GB) in 100 shards. Reading
// them into one vector made resident memory grow with the number of shards; here a window
// is copied out of the mapped shards and its pages are released again, so a run holds the
// pages of one batch, whatever the number or size of the shards. Windows cross shard
// boundaries exactly as they crossed them in the concatenation (a document may continue
// into the next shard), so a run sees the same batches as when the shards were read whole.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn::data {

class MappedShard;

class TokenStream {
 public:
  TokenStream() = default;
  /// Maps every shard of `paths` in order (MappedShard::open: DataError naming a bad one).
  static TokenStream mapShards(const std::vector<std::string>& paths);
  /// An in-memory stream of `tokens`.
  explicit TokenStream(std::vector<uint16_t> tokens);

  /// Appends one token to an in-memory stream (tests build small streams this way); a
  /// DataError on a stream of mapped shards.
  void push_back(uint16_t token);

  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// Shards mapped (0 for an in-memory stream).
  int64_t shardCount() const { return static_cast<int64_t>(shards_.size()); }

  /// Copies tokens [start, start + count) to `out`, then releases the mapped pages it read.
  /// DataError when the range is not inside the stream.
  void copy(int64_t start, int64_t count, uint16_t* out) const;
  /// The same into a fresh vector.
  std::vector<uint16_t> slice(int64_t start, int64_t count) const;

 private:
  std::vector<std::shared_ptr<const MappedShard>> shards_;
  std::vector<int64_t> starts_;   // where each shard begins in the stream
  std::vector<uint16_t> memory_;  // an in-memory stream's tokens
  int64_t size_ = 0;
};

}  // namespace attn::data
