// The error of everything under runtime/data/: a file that is missing, unreadable or not
// what it claims to be (a corrupt shard, a broken encoder.json). The message is complete
// and names the file; the CLI prints it as "attn: error: MESSAGE" and exits 1.
#pragma once

#include <stdexcept>
#include <string>

namespace attn::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace attn::data
