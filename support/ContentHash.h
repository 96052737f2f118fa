// attn's two hashes, one implementation each.
//
// - fnv1a64 / hashHex: a stable 64-bit hash of short text (FNV-1a: offset basis
//   0xcbf29ce484222325, prime 0x100000001b3), the same on every machine and in every
//   process: the hash in cache file names and keys (generated source, LLVM IR).
// - checksum64 / checksumHex: XXH64 (seed 0) of file contents, fast enough for checkpoints
//   of hundreds of megabytes (FNV-1a goes a byte at a time): what cache entries,
//   checkpoint manifests and corpus manifests store to detect damage.
//
// Neither is cryptographic: they detect accidents (a flipped byte, a truncated or foreign
// file), not an adversary who can write the files (docs/SECURITY.md says why that is moot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace attn::support {

/// FNV-1a 64 of `bytes`, continuing from `state` (chain calls to hash several pieces).
uint64_t fnv1a64(std::string_view bytes, uint64_t state = 0xcbf29ce484222325ULL);

/// fnv1a64(text) as 16 lower-case hex digits.
std::string hashHex(std::string_view text);

/// XXH64 (seed 0) of `bytes`.
uint64_t checksum64(std::string_view bytes);

/// checksum64(bytes) as 16 lower-case hex digits.
std::string checksumHex(std::string_view bytes);

/// `value` as 16 lower-case hex digits.
std::string hex16(uint64_t value);

}  // namespace attn::support
