#include "runtime/data/DataDir.h"

#include <cstdlib>

namespace attn::data {

std::string dataDirectory() {
  if (const char* dir = std::getenv("ATTN_DATA_DIR"); dir && *dir) return dir;
#ifdef ATTN_DEFAULT_DATA_DIR
  return ATTN_DEFAULT_DATA_DIR;
#else
  return "data";
#endif
}

std::string cacheDirectory() {
  if (const char* dir = std::getenv("ATTN_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/attn";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/attn";
  return "/tmp/attn-cache";
}

}  // namespace attn::data
