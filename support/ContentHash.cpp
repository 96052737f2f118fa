// fnv1a64 and checksum64 (ContentHash.h). XXH64 comes from the xxhash header, inlined
// (XXH_INLINE_ALL), so no library is linked for it.
#include "support/ContentHash.h"

#include <cstdio>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace attn::support {

uint64_t fnv1a64(std::string_view bytes, uint64_t state) {
  for (unsigned char c : bytes) {
    state ^= c;
    state *= 0x100000001b3ULL;
  }
  return state;
}

std::string hex16(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string hashHex(std::string_view text) {
  return hex16(fnv1a64(text));
}

uint64_t checksum64(std::string_view bytes) {
  return XXH64(bytes.data(), bytes.size(), 0);
}

std::string checksumHex(std::string_view bytes) {
  return hex16(checksum64(bytes));
}

}  // namespace attn::support
