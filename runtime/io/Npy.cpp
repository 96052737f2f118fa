// The .npy reader and writer of Npy.h, and the float16 conversions.
//
// Reading goes top to bottom: preamble (magic, version, header length), the header's Python
// dict literal parsed by a small recursive-descent parser over Python's literal syntax, the
// three keys checked one by one, then the data size against what the file holds. Every byte
// access goes through HeaderParser::peek or a size check just before it, so any input, however
// mangled, ends in an NpyArray or an NpyError. Not here: anything NumPy can write that attn
// does not compute with (see Npy.h).
#include "runtime/io/Npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include <sys/stat.h>

#include "support/AtomicWrite.h"
#include "support/FileError.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "attn::io assumes a little-endian host: .npy data is copied without byte swapping"
#endif

namespace attn::io {

namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMagicSize = sizeof(kMagic);
// NumPy 1.x's NPY_MAXDIMS; also keeps every header we write far below the 64 KiB a
// version 1.0 header can hold, so the writer never needs version 2.0.
constexpr size_t kMaxDims = 32;
// How deep tuples and lists may nest in a header (a valid one nests at most 3 deep).
constexpr int kMaxNesting = 32;
constexpr const char* kSupported = "(attn reads float16, float32, float64)";

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw NpyError(name + ": " + what);
}

// ---- the header's Python literal -------------------------------------------------------

/// One Python literal from a header. Only the fields of its kind are meaningful.
struct PyValue {
  enum class Kind { Str, Int, Bool, None, Tuple, List };
  Kind kind = Kind::None;
  std::string text;            // Str: the contents; Int: the digits as written (with sign)
  int64_t integer = 0;         // Int, when it fits
  bool intOverflow = false;    // Int: does not fit in int64
  bool boolean = false;        // Bool
  std::vector<PyValue> items;  // Tuple, List
  size_t offset = 0;           // file offset of the value's first byte
};

const char* kindName(PyValue::Kind kind) {
  switch (kind) {
    case PyValue::Kind::Str:
      return "a string";
    case PyValue::Kind::Int:
      return "an integer";
    case PyValue::Kind::Bool:
      return "a boolean";
    case PyValue::Kind::None:
      return "None";
    case PyValue::Kind::Tuple:
      return "a tuple";
    case PyValue::Kind::List:
      return "a list";
  }
  return "a value";
}

/// Python repr of a value, for messages: 'f4', (2, -3), [...].
std::string repr(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::Str:
      return "'" + v.text + "'";
    case PyValue::Kind::Int:
      return v.text;
    case PyValue::Kind::Bool:
      return v.boolean ? "True" : "False";
    case PyValue::Kind::None:
      return "None";
    case PyValue::Kind::Tuple:
    case PyValue::Kind::List: {
      const bool tuple = v.kind == PyValue::Kind::Tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < v.items.size(); ++i) out += (i ? ", " : "") + repr(v.items[i]);
      if (tuple && v.items.size() == 1) out += ",";
      return out + (tuple ? ")" : "]");
    }
  }
  return "?";
}

/// The header's dict, in the order written.
using PyDict = std::vector<std::pair<std::string, PyValue>>;

/// Recursive-descent parser for the subset of Python literal syntax a header can hold:
/// one dict with string keys; values are strings, integers, True/False/None, tuples and
/// lists. Whitespace anywhere between tokens, single or double quotes, trailing commas.
class HeaderParser {
 public:
  HeaderParser(const std::string& name, const uint8_t* bytes, size_t size, size_t fileOffset,
               bool asciiOnly)
      : name_(name), bytes_(bytes), size_(size), fileOffset_(fileOffset), asciiOnly_(asciiOnly) {}

  PyDict parseDict() {
    skipSpace();
    expect('{', "'{' opening the header's dict");
    PyDict dict;
    skipSpace();
    while (peek() != '}') {
      if (peek() != '\'' && peek() != '"') error("a string key or '}'");
      const size_t keyOffset = here();
      const std::string key = parseString();
      for (const auto& entry : dict) {
        if (entry.first == key) {
          malformed("duplicate key '" + key + "' at byte " + std::to_string(keyOffset));
        }
      }
      skipSpace();
      expect(':', "':' after the key '" + key + "'");
      skipSpace();
      dict.emplace_back(key, parseValue(0));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        skipSpace();
      } else if (peek() != '}') {
        error("',' or '}' after the value of '" + key + "'");
      }
    }
    ++pos_;
    skipSpace();
    if (pos_ != size_) error("only spaces and a newline after the dict's '}'");
    return dict;
  }

 private:
  static constexpr int kEnd = -1;

  /// The current byte, or kEnd; the only place header bytes are read.
  int peek() const { return pos_ < size_ ? bytes_[pos_] : kEnd; }
  size_t here() const { return fileOffset_ + pos_; }

  [[noreturn]] void malformed(const std::string& what) const {
    fail(name_, "malformed header: " + what);
  }

  [[noreturn]] void error(const std::string& expected) const {
    const int c = peek();
    std::string found;
    char buf[16];
    if (c == kEnd) {
      found = "the end of the header";
    } else if (c >= 0x20 && c < 0x7f) {
      found = std::string("'") + static_cast<char>(c) + "'";
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
      found = buf;
    }
    malformed("expected " + expected + ", found " + found + " at byte " + std::to_string(here()));
  }

  void expect(char c, const std::string& what) {
    if (peek() != c) error(what);
    ++pos_;
  }

  void skipSpace() {
    for (int c = peek(); c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; c = peek()) {
      ++pos_;
    }
  }

  static bool isDigit(int c) { return c >= '0' && c <= '9'; }
  static bool isLetter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  PyValue parseValue(int depth) {
    if (depth > kMaxNesting) malformed("tuples nested too deep at byte " + std::to_string(here()));
    const int c = peek();
    if (c == '\'' || c == '"') {
      PyValue v;
      v.offset = here();
      v.kind = PyValue::Kind::Str;
      v.text = parseString();
      return v;
    }
    if (c == '(' || c == '[') return parseSequence(depth);
    if (isDigit(c) || c == '-' || c == '+') return parseInt();
    if (isLetter(c)) return parseName();
    error("a value (a string, an integer, True, False, None, a tuple or a list)");
  }

  std::string parseString() {
    const int quote = peek();
    const size_t start = here();
    ++pos_;
    std::string text;
    for (int c = peek(); c != quote; c = peek()) {
      if (c == kEnd || c == '\n') {
        malformed("string starting at byte " + std::to_string(start) + " is not closed");
      }
      if (c == '\\') {
        malformed("escape sequence in a string at byte " + std::to_string(here()) +
                  " (no valid key or dtype needs one)");
      }
      if (c >= 0x80 && asciiOnly_) {
        malformed("non-ASCII byte at byte " + std::to_string(here()) +
                  " (a version 1.0 or 2.0 header is ASCII)");
      }
      text += static_cast<char>(c);
      ++pos_;
    }
    ++pos_;
    return text;
  }

  PyValue parseInt() {
    PyValue v;
    v.offset = here();
    v.kind = PyValue::Kind::Int;
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      v.text += static_cast<char>(peek());
      ++pos_;
      skipSpace();  // Python allows "- 3"
    }
    if (!isDigit(peek())) error("a digit");
    if (peek() == '0' && pos_ + 1 < size_ && isDigit(bytes_[pos_ + 1])) {
      malformed("integer with a leading zero at byte " + std::to_string(here()));
    }
    // Accumulate as a negative number so that INT64_MIN fits; flip at the end.
    int64_t value = 0;
    for (int c = peek(); isDigit(c); c = peek()) {
      const int64_t digit = c - '0';
      if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) v.intOverflow = true;
      if (!v.intOverflow) value = value * 10 - digit;
      v.text += static_cast<char>(c);
      ++pos_;
    }
    if (!negative) {
      if (value == std::numeric_limits<int64_t>::min()) v.intOverflow = true;
      value = -value;
    }
    v.integer = v.intOverflow ? 0 : value;
    // Python 2 era NumPy wrote longs as 3L; NumPy still reads them.
    if (peek() == 'L') ++pos_;
    const int next = peek();
    if (next == '.' || next == '_' || isLetter(next)) {  // 2.0, 1e3, 1_000, 0x10, 3j
      malformed("number at byte " + std::to_string(v.offset) + " is not a plain decimal integer");
    }
    return v;
  }

  PyValue parseName() {
    PyValue v;
    v.offset = here();
    std::string word;
    for (int c = peek(); isLetter(c) || isDigit(c) || c == '_'; c = peek()) {
      word += static_cast<char>(c);
      ++pos_;
    }
    if (word == "True" || word == "False") {
      v.kind = PyValue::Kind::Bool;
      v.boolean = word == "True";
    } else if (word == "None") {
      v.kind = PyValue::Kind::None;
    } else {
      malformed("unexpected name '" + word + "' at byte " + std::to_string(v.offset) +
                " (only True, False and None are literals)");
    }
    return v;
  }

  /// (a, b), (a,), (), [a, b]; a parenthesised value without a comma is that value, as in
  /// Python: (5) is the integer 5, not a tuple.
  PyValue parseSequence(int depth) {
    PyValue v;
    v.offset = here();
    const bool tuple = peek() == '(';
    const char close = tuple ? ')' : ']';
    v.kind = tuple ? PyValue::Kind::Tuple : PyValue::Kind::List;
    ++pos_;
    skipSpace();
    bool sawComma = false;
    while (peek() != close) {
      v.items.push_back(parseValue(depth + 1));
      skipSpace();
      if (peek() == ',') {
        sawComma = true;
        ++pos_;
        skipSpace();
      } else if (peek() != close) {
        error(std::string("',' or '") + close + "'");
      }
    }
    ++pos_;
    if (tuple && v.items.size() == 1 && !sawComma) return v.items[0];
    return v;
  }

  const std::string& name_;
  const uint8_t* bytes_;
  size_t size_;
  size_t pos_ = 0;
  size_t fileOffset_;
  bool asciiOnly_;
};

// ---- from header to array description ---------------------------------------------------

/// What the header says, and where the data starts.
struct NpyLayout {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t dataOffset = 0;
  size_t dataBytes = 0;
};

std::string describeData(const std::vector<int64_t>& shape, DType dtype, size_t bytes) {
  return formatShape(shape) + " " + dtypeName(dtype) + " = " + std::to_string(bytes) + " bytes";
}

DType checkDescr(const std::string& name, const PyValue& descr) {
  if (descr.kind == PyValue::Kind::List) {
    fail(name, "unsupported dtype: structured arrays (a list 'descr') are not supported " +
                   std::string(kSupported));
  }
  if (descr.kind != PyValue::Kind::Str) {
    fail(name, "malformed header: 'descr' must be a string like '<f4', found " +
                   std::string(kindName(descr.kind)));
  }
  const std::string& d = descr.text;
  if (d.size() == 3 && (d[0] == '<' || d[0] == '=') && d[1] == 'f') {
    if (d[2] == '2') return DType::F16;
    if (d[2] == '4') return DType::F32;
    if (d[2] == '8') return DType::F64;
  }
  if (d == ">f2" || d == ">f4" || d == ">f8") {
    fail(name, "big-endian data ('" + d + "') is not supported; convert with a.astype('<" +
                   d.substr(1) + "')");
  }
  fail(name, "unsupported dtype '" + d + "' " + kSupported);
}

std::vector<int64_t> checkShape(const std::string& name, const PyValue& shape) {
  if (shape.kind != PyValue::Kind::Tuple) {
    fail(name, "malformed header: 'shape' must be a tuple of integers like (2, 3), found " +
                   std::string(kindName(shape.kind)) + " " + repr(shape));
  }
  if (shape.items.size() > kMaxDims) {
    fail(name, "shape has " + std::to_string(shape.items.size()) +
                   " dimensions; attn reads at most " + std::to_string(kMaxDims));
  }
  std::vector<int64_t> dims;
  for (const PyValue& item : shape.items) {
    if (item.kind != PyValue::Kind::Int) {
      fail(name, "malformed header: 'shape' must be a tuple of integers, found " +
                     std::string(kindName(item.kind)) + " in " + repr(shape));
    }
    if (item.intOverflow) {
      fail(name, "absurd dimension " + item.text + " in shape " + repr(shape) +
                     " (does not fit in 64 bits)");
    }
    if (item.integer < 0) {
      fail(name, "negative dimension " + item.text + " in shape " + repr(shape));
    }
    dims.push_back(item.integer);
  }
  return dims;
}

/// Bytes of data for `shape`, or a failure when that does not fit in int64. Zero-sized
/// dimensions do not hide absurd ones: (0, 2^62, 2^62) is rejected like (2^62, 2^62).
size_t checkedDataBytes(const std::string& name, const std::vector<int64_t>& shape, DType dtype) {
  int64_t bytes = static_cast<int64_t>(dtypeSize(dtype));
  bool empty = false;
  for (int64_t dim : shape) {
    if (dim == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(bytes, dim, &bytes)) {
      std::string dims;
      for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
      fail(name, "absurd shape (" + dims + (shape.size() == 1 ? "," : "") +
                     "): its size in bytes does not fit in 64 bits");
    }
  }
  return empty ? 0 : static_cast<size_t>(bytes);
}

uint32_t readLittleEndian(const uint8_t* p, size_t n) {
  uint32_t value = 0;
  for (size_t i = 0; i < n; ++i) value |= static_cast<uint32_t>(p[i]) << (8 * i);
  return value;
}

NpyLayout parseLayout(const std::string& name, const uint8_t* bytes, size_t size) {
  // Preamble: magic (6), major, minor, header length (uint16 for 1.0, uint32 for 2.0/3.0).
  if (size == 0) fail(name, "not a .npy file (the file is empty)");
  const size_t magicSeen = size < kMagicSize ? size : kMagicSize;
  if (std::memcmp(bytes, kMagic, magicSeen) != 0) {
    if (size >= 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0) {
      fail(name, "not a .npy file but a zip archive (an .npz?); save each array with np.save");
    }
    fail(name, "not a .npy file (bad magic bytes)");
  }
  if (size < kMagicSize + 2) {
    fail(name,
         "truncated: the file ends inside the .npy preamble (" + std::to_string(size) + " bytes)");
  }
  const int major = bytes[6];
  const int minor = bytes[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (attn reads 1.0, 2.0 and 3.0)");
  }
  const size_t lengthSize = major == 1 ? 2 : 4;
  const size_t headerStart = kMagicSize + 2 + lengthSize;
  if (size < headerStart) {
    fail(name,
         "truncated: the file ends inside the .npy preamble (" + std::to_string(size) + " bytes)");
  }
  const size_t headerLength = readLittleEndian(bytes + kMagicSize + 2, lengthSize);
  if (headerLength > size - headerStart) {
    fail(name, "truncated: the header length is " + std::to_string(headerLength) +
                   " bytes, but only " + std::to_string(size - headerStart) +
                   " bytes follow the preamble");
  }

  HeaderParser parser(name, bytes + headerStart, headerLength, headerStart, major < 3);
  const PyDict dict = parser.parseDict();
  const PyValue* descr = nullptr;
  const PyValue* fortranOrder = nullptr;
  const PyValue* shape = nullptr;
  for (const auto& [key, value] : dict) {
    if (key == "descr") {
      descr = &value;
    } else if (key == "fortran_order") {
      fortranOrder = &value;
    } else if (key == "shape") {
      shape = &value;
    } else {
      fail(name, "malformed header: unexpected key '" + key +
                     "' (a .npy header has exactly 'descr', 'fortran_order' and 'shape')");
    }
  }
  for (const auto& [key, value] : {std::pair<const char*, const PyValue*>{"descr", descr},
                                   {"fortran_order", fortranOrder},
                                   {"shape", shape}}) {
    if (!value) fail(name, std::string("malformed header: missing key '") + key + "'");
  }

  NpyLayout layout;
  layout.dtype = checkDescr(name, *descr);
  if (fortranOrder->kind != PyValue::Kind::Bool) {
    fail(name,
         "malformed header: 'fortran_order' must be True or False, found " + repr(*fortranOrder));
  }
  if (fortranOrder->boolean) {
    fail(name, "Fortran-order arrays are not supported; save with np.ascontiguousarray");
  }
  layout.shape = checkShape(name, *shape);
  layout.dataBytes = checkedDataBytes(name, layout.shape, layout.dtype);
  layout.dataOffset = headerStart + headerLength;

  const size_t available = size - layout.dataOffset;
  if (available < layout.dataBytes) {
    fail(name, "truncated: header says " +
                   describeData(layout.shape, layout.dtype, layout.dataBytes) +
                   " of data, the file has " + std::to_string(available));
  }
  if (available > layout.dataBytes) {
    fail(name, std::to_string(available - layout.dataBytes) +
                   " bytes of trailing data after the array (header says " +
                   describeData(layout.shape, layout.dtype, layout.dataBytes) + ")");
  }
  return layout;
}

// ---- writing --------------------------------------------------------------------------

/// Fails unless `array` is writable: shape sane, data exactly numel * element size.
void checkArray(const std::string& name, const NpyArray& array) {
  if (array.shape.size() > kMaxDims) {
    fail(name, "cannot write an array of " + std::to_string(array.shape.size()) +
                   " dimensions (at most " + std::to_string(kMaxDims) + ")");
  }
  for (int64_t dim : array.shape) {
    if (dim < 0) fail(name, "cannot write shape with negative dimension " + std::to_string(dim));
  }
  const size_t expected = checkedDataBytes(name, array.shape, array.dtype);
  if (array.data.size() != expected) {
    fail(name, "inconsistent array: shape " + describeData(array.shape, array.dtype, expected) +
                   ", but it holds " + std::to_string(array.data.size()) + " bytes of data");
  }
}

/// The preamble and header np.save writes (NumPy >= 1.24): the dict with keys sorted, room
/// for the first dimension to grow to 21 digits, spaces and a '\n' to a multiple of 64
/// bytes (a whole extra 64 when already aligned, as NumPy does).
std::string headerBytes(const NpyArray& array) {
  std::string shape = "(";
  for (size_t i = 0; i < array.shape.size(); ++i) {
    shape += (i ? ", " : "") + std::to_string(array.shape[i]);
  }
  shape += array.shape.size() == 1 ? ",)" : ")";
  std::string dict = std::string("{'descr': '") + dtypeDescr(array.dtype) +
                     "', 'fortran_order': False, 'shape': " + shape + ", }";
  if (!array.shape.empty()) dict.append(21 - std::to_string(array.shape[0]).size(), ' ');
  const size_t preamble = kMagicSize + 2 + 2;
  const size_t padding = 64 - (preamble + dict.size() + 1) % 64;
  dict.append(padding, ' ');
  dict += '\n';
  // At most 32 dimensions of at most 19 digits: always far below 64 KiB, so version 1.0.
  std::string out(reinterpret_cast<const char*>(kMagic), kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

// ---- element conversion -------------------------------------------------------------------

template <typename T>
T loadAt(const std::vector<uint8_t>& data, size_t index) {
  T value;
  std::memcpy(&value, data.data() + index * sizeof(T), sizeof(T));
  return value;
}

template <typename Out>
std::vector<Out> convertAll(const char* caller, const NpyArray& array) {
  checkArray(caller, array);
  const size_t n = static_cast<size_t>(array.numel());
  std::vector<Out> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (array.dtype) {
      case DType::F16:
        out[i] = static_cast<Out>(halfToFloat(loadAt<uint16_t>(array.data, i)));
        break;
      case DType::F32:
        out[i] = static_cast<Out>(loadAt<float>(array.data, i));
        break;
      case DType::F64:
        out[i] = static_cast<Out>(loadAt<double>(array.data, i));
        break;
    }
  }
  return out;
}

template <typename In>
NpyArray convertFrom(const char* caller, const std::vector<int64_t>& shape, const In* values,
                     DType target) {
  NpyArray array;
  array.dtype = target;
  array.shape = shape;
  for (int64_t dim : shape) {
    if (dim < 0) fail(caller, "negative dimension " + std::to_string(dim) + " in shape");
  }
  if (shape.size() > kMaxDims) {
    fail(caller,
         std::to_string(shape.size()) + " dimensions (at most " + std::to_string(kMaxDims) + ")");
  }
  array.data.resize(checkedDataBytes(caller, shape, target));
  const size_t n = static_cast<size_t>(array.numel());
  uint8_t* out = array.data.data();
  for (size_t i = 0; i < n; ++i) {
    switch (target) {
      case DType::F16: {
        const uint16_t h = doubleToHalf(static_cast<double>(values[i]));
        std::memcpy(out + 2 * i, &h, 2);
        break;
      }
      case DType::F32: {
        const float f = static_cast<float>(values[i]);
        std::memcpy(out + 4 * i, &f, 4);
        break;
      }
      case DType::F64: {
        const double d = static_cast<double>(values[i]);
        std::memcpy(out + 8 * i, &d, 8);
        break;
      }
    }
  }
  return array;
}

}  // namespace

// ---- public API ------------------------------------------------------------------------

size_t dtypeSize(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return 2;
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
  }
  return 0;
}

const char* dtypeName(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return "float16";
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
  }
  return "?";
}

const char* dtypeDescr(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return "<f2";
    case DType::F32:
      return "<f4";
    case DType::F64:
      return "<f8";
  }
  return "?";
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::string formatShape(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "x" : "") + std::to_string(shape[i]);
  return out;
}

NpyArray parseNpy(const std::string& name, const uint8_t* bytes, size_t size) {
  const NpyLayout layout = parseLayout(name, bytes, size);
  NpyArray array;
  array.dtype = layout.dtype;
  array.shape = layout.shape;
  array.data.assign(bytes + layout.dataOffset, bytes + layout.dataOffset + layout.dataBytes);
  return array;
}

NpyArray readNpy(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (fstat(fileno(file), &info) == 0 && S_ISDIR(info.st_mode)) {
    std::fclose(file);
    fail(path, "cannot read: it is a directory (expected a .npy file)");
  }
  // A pipe (`--q <(python make_q.py)`) is read to its end; a device such as /dev/zero
  // would never end, and a socket is not a file.
  if (!S_ISREG(info.st_mode) && !S_ISFIFO(info.st_mode)) {
    std::fclose(file);
    fail(path, "cannot read: not a regular file or a pipe (expected a .npy file)");
  }
  std::vector<uint8_t> bytes;
  int readErrno = 0;
  try {
    // The size of a regular file is a hint; pipes and the like are read to the end.
    if (S_ISREG(info.st_mode) && info.st_size > 0) {
      bytes.reserve(static_cast<size_t>(info.st_size) + 1);
    }
    constexpr size_t kChunk = size_t{1} << 20;
    for (;;) {
      const size_t old = bytes.size();
      const size_t want = bytes.capacity() > old ? bytes.capacity() - old : kChunk;
      bytes.resize(old + want);
      const size_t got = std::fread(bytes.data() + old, 1, want, file);
      if (got < want && std::ferror(file)) readErrno = errno ? errno : EIO;
      bytes.resize(old + got);
      if (got < want) break;
    }
  } catch (const std::bad_alloc&) {
    std::fclose(file);
    fail(path,
         "cannot read: not enough memory for a file of " + std::to_string(info.st_size) + " bytes");
  }
  std::fclose(file);
  if (readErrno != 0) fail(path, std::string("cannot read: ") + std::strerror(readErrno));

  // Parse in place, then move the buffer into the array without its header: one copy of
  // the data in memory at a time, however large the tensor.
  const NpyLayout layout = parseLayout(path, bytes.data(), bytes.size());
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(layout.dataOffset));
  NpyArray array;
  array.dtype = layout.dtype;
  array.shape = layout.shape;
  array.data = std::move(bytes);
  return array;
}

std::vector<uint8_t> serializeNpy(const NpyArray& array) {
  checkArray("serializeNpy", array);
  const std::string header = headerBytes(array);
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

void writeNpy(const std::string& path, const NpyArray& array) {
  checkArray(path, array);
  const std::string header = headerBytes(array);
  try {
    support::writeFileAtomically(path, {{header.data(), header.size()}, {array.data.data(), array.data.size()}});
  } catch (const support::FileError& e) {
    throw NpyError(e.what());
  }
}

std::vector<float> toFloat32(const NpyArray& array) {
  return convertAll<float>("toFloat32", array);
}
std::vector<double> toFloat64(const NpyArray& array) {
  return convertAll<double>("toFloat64", array);
}

NpyArray fromFloat32(const std::vector<int64_t>& shape, const float* values, DType target) {
  return convertFrom("fromFloat32", shape, values, target);
}

NpyArray fromFloat64(const std::vector<int64_t>& shape, const double* values, DType target) {
  return convertFrom("fromFloat64", shape, values, target);
}

// ---- float16 -------------------------------------------------------------------------------

uint16_t doubleToHalf(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 48) & 0x8000);
  const int exponent = static_cast<int>((bits >> 52) & 0x7ff);
  const uint64_t fraction = bits & ((uint64_t{1} << 52) - 1);

  if (exponent == 0x7ff) {
    if (fraction == 0) return sign | 0x7c00;  // infinity
    // NaN: keep the top payload bits, set the quiet bit so it cannot become infinity.
    return static_cast<uint16_t>(sign | 0x7c00 | 0x0200 | (fraction >> 42));
  }
  if (exponent == 0) return sign;  // zero, or a float64 subnormal: far below 2^-25

  const int e = exponent - 1023;  // value = 1.fraction * 2^e
  if (e > 15) return sign | 0x7c00;
  const uint64_t mantissa = fraction | (uint64_t{1} << 52);  // 53 significant bits
  // Normal halves keep 11 significant bits; below 2^-14 the half is subnormal with a
  // fixed step of 2^-24, so fewer bits survive.
  const int shift = e >= -14 ? 42 : 42 + (-14 - e);
  if (shift > 54) return sign;  // below half the smallest subnormal: rounds to zero
  const uint64_t kept = mantissa >> shift;
  const uint64_t rest = mantissa & ((uint64_t{1} << shift) - 1);
  const uint64_t halfway = uint64_t{1} << (shift - 1);
  uint32_t h = e >= -14
                   ? (static_cast<uint32_t>(e + 15) << 10) | static_cast<uint32_t>(kept & 0x3ff)
                   : static_cast<uint32_t>(kept);
  // Round to nearest, ties to even. A carry out of the mantissa bumps the exponent, which
  // is exactly right: the largest subnormal becomes the smallest normal, 65520 becomes inf.
  if (rest > halfway || (rest == halfway && (kept & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

uint16_t floatToHalf(float value) {
  // float -> double is exact, so this rounds once, from the float's own value.
  return doubleToHalf(static_cast<double>(value));
}

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13);  // inf, or NaN with its payload
  } else if (exponent != 0) {
    bits = sign | (static_cast<uint32_t>(exponent - 15 + 127) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal: mantissa * 2^-24; normalise so the leading 1 becomes implicit.
    int e = -14;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | ((mantissa & 0x3ff) << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

}  // namespace attn::io
