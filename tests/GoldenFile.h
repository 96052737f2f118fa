// Golden files: compare generated text with tests/golden/..., so that a change in what
// the compiler produces is a visible diff. UPDATE_GOLDEN=1 rewrites them instead.
#pragma once

#include <string>

namespace attn::test {

/// Empty when `actual` equals the golden file tests/golden/<relativePath>; otherwise a
/// message with the first differing line. With UPDATE_GOLDEN=1 in the environment, writes
/// the file and returns empty.
std::string compareWithGolden(const std::string& relativePath, const std::string& actual);

}  // namespace attn::test
