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

}  // namespace attn::data
