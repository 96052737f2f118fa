// The documents of a packed batch, as the kernel drivers (CPU, CUDA) use them: per batch
// row, the positions where its documents begin. A program whose mask is `per document`
// (compiler/IR.h) is run by the drivers as one sequence per document: each (head,
// document) gets the kernels with its pointers offset to the document's first row and key
// and the document's own lengths, so i, j and L are the document's and no tile of rows
// and keys of different documents is ever visited (docs/LANGUAGE-NOTES.md, "Documents").
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace attn::documents {

/// Document boundaries over the Lk key positions: bounds[r] = {0, b_1, ..., Lk}, strictly
/// increasing (empty documents dropped), for batch row r; one row when every batch row
/// shares them. Flattened head h (batch × query heads) is in batch row h / headsPerRow.
struct Ranges {
  std::vector<std::vector<int64_t>> bounds;
  int64_t headsPerRow = 1;

  bool empty() const { return bounds.empty(); }
  const std::vector<int64_t>& of(int64_t head) const {
    return bounds.size() == 1 ? bounds[0] : bounds[static_cast<size_t>(head / headsPerRow)];
  }
};

/// One (document, query rows) piece of a head's sequence: query rows [rowBegin, rowBegin +
/// rows) (indices into q, the last Lq of the Lk positions) and keys [keyBegin, keyBegin +
/// keys). The kernels see it as a sequence of `keys` keys whose last `rows` are queries.
struct Segment {
  int64_t rowBegin = 0, rows = 0, keyBegin = 0, keys = 0;
};

/// The segments of one head: the whole sequence without documents, else one per document
/// that holds a query row (a document entirely before the queries has none and is skipped).
inline std::vector<Segment> segments(const Ranges* ranges, int64_t head, int64_t lq, int64_t lk) {
  if (!ranges || ranges->empty()) return {Segment{0, lq, 0, lk}};
  const std::vector<int64_t>& b = ranges->of(head);
  std::vector<Segment> out;
  const int64_t firstQuery = lk - lq;  // position of query row 0
  for (size_t d = 0; d + 1 < b.size(); ++d) {
    const int64_t s = b[d], e = b[d + 1];
    const int64_t rowStart = std::max(s, firstQuery);
    if (rowStart >= e) continue;
    out.push_back(Segment{rowStart - firstQuery, e - rowStart, s, e - s});
  }
  return out;
}

}  // namespace attn::documents
