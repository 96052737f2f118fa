// "Did you mean ...?" (Suggest.h).
//
// Besides the distance bound of the header, a candidate that differs from the name in
// every position (distance == the longer length, e.g. 'x' -> 'q') is no typo and is never
// suggested; a candidate that differs only in letter case ('l' -> 'L') always is.
#include "compiler/Suggest.h"

#include <algorithm>
#include <cctype>

namespace attn {

size_t editDistance(const std::string& a, const std::string& b) {
  // Two rows of the classic dynamic programme: prev[k] is the distance between the
  // first r-1 bytes of a and the first k bytes of b.
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t k = 0; k <= b.size(); ++k) prev[k] = k;
  for (size_t r = 1; r <= a.size(); ++r) {
    cur[0] = r;
    for (size_t k = 1; k <= b.size(); ++k) {
      size_t substitute = prev[k - 1] + (a[r - 1] == b[k - 1] ? 0 : 1);
      cur[k] = std::min({prev[k] + 1, cur[k - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

bool equalIgnoringCase(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(a[k])) != std::tolower(static_cast<unsigned char>(b[k])))
      return false;
  return true;
}

}  // namespace

std::optional<std::string> nearestName(const std::string& name, const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    if (c != name && equalIgnoringCase(c, name)) return c;
  const size_t limit = std::max<size_t>(1, name.size() / 3);
  std::optional<std::string> best;
  size_t bestDistance = limit + 1;
  for (const auto& c : candidates) {
    // The distance is at least the difference in length: skip hopeless candidates cheaply
    // (names in a 10 MB file can be long).
    size_t lengthGap = c.size() > name.size() ? c.size() - name.size() : name.size() - c.size();
    if (lengthGap > limit) continue;
    size_t d = editDistance(name, c);
    if (d >= std::max(name.size(), c.size())) continue;  // nothing in common
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace attn
