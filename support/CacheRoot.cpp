#include "support/CacheRoot.h"

#include <unistd.h>

#include <cstdlib>

namespace attn::support {

std::string cacheDirectory() {
  if (const char* dir = std::getenv("ATTN_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/attn";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/attn";
  return "/tmp/attn-cache-" + std::to_string(::getuid());
}

}  // namespace attn::support
