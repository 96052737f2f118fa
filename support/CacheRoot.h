// Where attn keeps what it can rebuild: compiled kernels (cpu/, cuda/), the tuning table
// (cuda/tuning.txt), the prepared built-in corpus (data/sotu/).
#pragma once

#include <string>

namespace attn::support {

/// $ATTN_CACHE_DIR, else $XDG_CACHE_HOME/attn, else $HOME/.cache/attn, else
/// /tmp/attn-cache-UID (UID: the user's id, so users sharing /tmp do not share a cache).
/// Read from the environment on every call.
std::string cacheDirectory();

}  // namespace attn::support
