#include "runtime/data/TokenStream.h"

#include <algorithm>
#include <cstring>

#include "runtime/data/DataError.h"
#include "runtime/data/Shards.h"

namespace attn::data {

TokenStream TokenStream::mapShards(const std::vector<std::string>& paths) {
  TokenStream stream;
  for (const std::string& path : paths) {
    auto shard = std::make_shared<const MappedShard>(MappedShard::open(path));
    if (shard->size() == 0) continue;  // nothing to read; keeps the shard search simple
    stream.starts_.push_back(stream.size_);
    stream.size_ += shard->size();
    stream.shards_.push_back(std::move(shard));
  }
  return stream;
}

TokenStream::TokenStream(std::vector<uint16_t> tokens)
    : memory_(std::move(tokens)), size_(static_cast<int64_t>(memory_.size())) {}

void TokenStream::push_back(uint16_t token) {
  if (!shards_.empty()) throw DataError("cannot append tokens to a stream of mapped shards");
  memory_.push_back(token);
  ++size_;
}

void TokenStream::copy(int64_t start, int64_t count, uint16_t* out) const {
  if (start < 0 || count < 0 || start > size_ - count)
    throw DataError("tokens [" + std::to_string(start) + ", " + std::to_string(start + count) +
                    ") are outside the stream of " + std::to_string(size_) + " tokens");
  if (count == 0) return;
  if (shards_.empty()) {
    std::memcpy(out, memory_.data() + start, static_cast<size_t>(count) * sizeof(uint16_t));
    return;
  }
  // The last shard that starts at or before `start`; then forward across boundaries.
  size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), start) - starts_.begin()) - 1;
  while (count > 0) {
    const MappedShard& shard = *shards_[s];
    const int64_t begin = start - starts_[s];
    const int64_t n = std::min(count, shard.size() - begin);
    std::memcpy(out, shard.tokens() + begin, static_cast<size_t>(n) * sizeof(uint16_t));
    shard.release(begin, begin + n);
    out += n;
    start += n;
    count -= n;
    ++s;
  }
}

std::vector<uint16_t> TokenStream::slice(int64_t start, int64_t count) const {
  std::vector<uint16_t> out(static_cast<size_t>(std::max<int64_t>(0, count)));
  copy(start, count, out.data());
  return out;
}

}  // namespace attn::data
