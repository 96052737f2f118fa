// Golden files: compare generated text with tests/golden/..., so that a change in what
// the compiler produces is a visible diff. UPDATE_GOLDEN=1 rewrites those that differ (and
// the run fails, so a rewrite is never a pass); under CI (CI set) it is refused.
#pragma once

#include <string>

namespace attn::test {

/// Empty when `actual` equals the golden file tests/golden/<relativePath>; otherwise a
/// message with the first differing line. With UPDATE_GOLDEN=1 in the environment and CI
/// unset, a differing or missing file is rewritten and the message says so.
std::string compareWithGolden(const std::string& relativePath, const std::string& actual);
/// The same for a golden file at any path.
std::string compareWithGoldenFile(const std::string& path, const std::string& actual);

}  // namespace attn::test
