// The built-in corpus, prepared once into attn's cache (<cache>/data/sotu: token shards and
// the validation index, as `attn data prepare` makes them) for `attn train` and `attn eval`
// without --data.
//
// The prepared copy carries a manifest (support/Manifest.h) of every file's size and
// checksum, written last. Each use verifies it first; a copy that fails (a file missing,
// truncated or changed, the manifest missing, damaged, or from an older attn that wrote
// none) is prepared again, with a one-line note on stderr, instead of failing every run
// until someone deletes it. Preparation happens in a fresh directory beside the cache
// entry, which is then renamed into place, so a crash mid-way or two processes preparing at
// once never leave a half-prepared corpus under the final name.
#pragma once

#include <string>

namespace attn::data {

/// The directory of the verified prepared built-in corpus (prepared, or prepared again,
/// when needed). Throws DataError naming the file when preparation itself fails.
std::string preparedDefaultCorpus();

/// Verifies the prepared corpus in `dir` against its manifest; returns "" when it is whole,
/// else one line saying what is wrong (naming the file). Exposed for the tests.
std::string verifyPreparedCorpus(const std::string& dir);

}  // namespace attn::data
