// "Did you mean ...?": the nearest candidate to a misspelt name.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attn {

/// Levenshtein distance between two strings (bytes).
size_t editDistance(const std::string& a, const std::string& b);

/// The candidate nearest to `name`, if it is close enough to be a plausible typo
/// (distance <= max(1, len/3)); ties go to the earliest candidate.
std::optional<std::string> nearestName(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace attn
