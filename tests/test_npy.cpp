// The .npy reader and writer (runtime/io/Npy.cpp): byte-exact headers against the format
// spec and np.save, round trips of every dtype on awkward shapes, one small bad file per
// diagnostic with its exact message, IEEE float16 conversion at its edges, and random
// mutations of a valid file that must each parse or fail with an NpyError.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/io/Npy.h"

namespace {

using attn::io::doubleToHalf;
using attn::io::DType;
using attn::io::floatToHalf;
using attn::io::halfToFloat;
using attn::io::NpyArray;
using attn::io::NpyError;

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/attn_npy_XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::vector<uint8_t> bytesOf(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

/// Parses from an exactly-sized heap copy, so that a sanitizer build catches any read
/// past the end.
NpyArray parse(const std::vector<uint8_t>& bytes, const std::string& name = "q.npy") {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() + 1]);
  if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
  return attn::io::parseNpy(name, exact.get(), bytes.size());
}

/// A .npy file with the header dict `dict` (padded with spaces and '\n' to a multiple of
/// 64 bytes, as the spec asks), format version `major`.0, followed by `dataBytes` bytes.
std::vector<uint8_t> makeFile(const std::string& dict, size_t dataBytes, int major = 1) {
  const size_t lengthSize = major == 1 ? 2 : 4;
  const size_t preamble = 6 + 2 + lengthSize;
  std::string header = dict;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < lengthSize; ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  std::vector<uint8_t> bytes = bytesOf(out);
  for (size_t i = 0; i < dataBytes; ++i) bytes.push_back(static_cast<uint8_t>(i * 7 + 1));
  return bytes;
}

std::string dictFor(const std::string& descr, const std::string& shape,
                    const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

/// Deterministic values that exercise sign, magnitude and fraction bits.
std::vector<float> sampleValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-300.0f, 300.0f);
  std::vector<float> out(n);
  for (float& v : out) v = dist(rng);
  return out;
}

std::vector<uint8_t> floatBytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 4);
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

void checkThrows(const std::vector<uint8_t>& bytes, const std::string& message) {
  CHECK_THROWS_WITH_AS(parse(bytes), message.c_str(), NpyError);
}

}  // namespace

TEST_SUITE("npy") {
  // ---- exact bytes ---------------------------------------------------------------------

  TEST_CASE("golden: float32 (2, 3) has the spec's 128-byte header, then the data") {
    NpyArray array;
    array.dtype = DType::F32;
    array.shape = {2, 3};
    array.data = floatBytes({0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f});

    // Written by hand from the spec: magic, version 1.0, header length 118 = 0x76 (LE), the
    // dict, spaces up to byte 127 and a '\n' there: 10 + 59 + 58 + 1 = 128.
    std::string expected("\x93NUMPY\x01\x00\x76\x00", 10);
    expected += "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expected += std::string(58, ' ');
    expected += '\n';
    REQUIRE(expected.size() == 128);

    const std::vector<uint8_t> bytes = attn::io::serializeNpy(array);
    REQUIRE(bytes.size() == 128 + 24);
    CHECK(std::string(bytes.begin(), bytes.begin() + 128) == expected);
    // 1.0f is 0x3f800000, stored little-endian right after the header.
    CHECK(bytes[128 + 4] == 0x00);
    CHECK(bytes[128 + 5] == 0x00);
    CHECK(bytes[128 + 6] == 0x80);
    CHECK(bytes[128 + 7] == 0x3f);
    CHECK(std::vector<uint8_t>(bytes.begin() + 128, bytes.end()) == array.data);
  }

  TEST_CASE("golden: scalar and 1-D headers are those np.save writes") {
    // NumPy 1.24: np.save(f, np.zeros((), np.float16)) and np.zeros((5,), np.float64).
    NpyArray scalar;
    scalar.dtype = DType::F16;
    scalar.data = {0x00, 0x3c};  // 1.0
    std::string expectedScalar("\x93NUMPY\x01\x00\x76\x00", 10);
    expectedScalar += "{'descr': '<f2', 'fortran_order': False, 'shape': (), }";
    expectedScalar += std::string(62, ' ') + "\n";
    const std::vector<uint8_t> s = attn::io::serializeNpy(scalar);
    REQUIRE(s.size() == 130);
    CHECK(std::string(s.begin(), s.begin() + 128) == expectedScalar);

    NpyArray vector;
    vector.dtype = DType::F64;
    vector.shape = {5};
    vector.data.assign(40, 0);
    std::string expectedVector("\x93NUMPY\x01\x00\x76\x00", 10);
    expectedVector += "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }";
    expectedVector += std::string(60, ' ') + "\n";
    const std::vector<uint8_t> v = attn::io::serializeNpy(vector);
    REQUIRE(v.size() == 168);
    CHECK(std::string(v.begin(), v.begin() + 128) == expectedVector);
  }

  TEST_CASE("golden: a long shape gets NumPy's 21-digit growth room and a 192-byte header") {
    // np.save leaves room for shape[0] to grow to 21 digits (20 spaces here), which takes
    // this header past 128 bytes: 10 + 100 + 20 + 61 + 1 = 192.
    NpyArray array;
    array.dtype = DType::F16;
    array.shape = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    std::string expected("\x93NUMPY\x01\x00\xb6\x00", 10);
    expected +=
        "{'descr': '<f2', 'fortran_order': False, 'shape': "
        "(0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14), }";
    expected += std::string(20 + 61, ' ') + "\n";
    REQUIRE(expected.size() == 192);
    const std::vector<uint8_t> bytes = attn::io::serializeNpy(array);
    CHECK(std::string(bytes.begin(), bytes.end()) == expected);
    const NpyArray back = parse(bytes);
    CHECK(back.shape == array.shape);
    CHECK(back.numel() == 0);
    CHECK(back.data.empty());
  }

  // ---- round trips ------------------------------------------------------------------------

  TEST_CASE("round trip: every dtype on awkward shapes, in memory and through a file") {
    const TempDir dir;
    const std::vector<std::vector<int64_t>> shapes = {{1}, {37, 5}, {2, 3, 37, 17}, {}, {0, 3}};
    for (DType dtype : {DType::F16, DType::F32, DType::F64}) {
      for (const auto& shape : shapes) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        const std::vector<float> values = sampleValues(static_cast<size_t>(n), 17);
        const NpyArray array = attn::io::fromFloat32(shape, values.data(), dtype);
        INFO(attn::io::dtypeName(dtype) << " " << attn::io::formatShape(shape));
        REQUIRE(array.data.size() == static_cast<size_t>(n) * attn::io::dtypeSize(dtype));

        const std::vector<uint8_t> bytes = attn::io::serializeNpy(array);
        const size_t headerSize = bytes.size() - array.data.size();
        CHECK(headerSize % 64 == 0);
        const NpyArray inMemory = parse(bytes);
        CHECK(inMemory.dtype == dtype);
        CHECK(inMemory.shape == shape);
        CHECK(inMemory.data == array.data);

        const std::string path = dir.file(std::string(attn::io::dtypeName(dtype)) + "_" +
                                          attn::io::formatShape(shape) + ".npy");
        attn::io::writeNpy(path, array);
        CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
        CHECK(std::filesystem::file_size(path) == bytes.size());
        const NpyArray fromFile = attn::io::readNpy(path);
        CHECK(fromFile.dtype == dtype);
        CHECK(fromFile.shape == shape);
        CHECK(fromFile.data == array.data);

        // float32 comes back exactly; float16 as the nearest half; float64 exactly.
        const std::vector<float> back = attn::io::toFloat32(fromFile);
        REQUIRE(back.size() == values.size());
        for (size_t i = 0; i < values.size(); ++i) {
          const float want = dtype == DType::F16 ? halfToFloat(floatToHalf(values[i])) : values[i];
          CHECK(back[i] == want);
        }
      }
    }
  }

  TEST_CASE("writeNpy replaces an existing file") {
    const TempDir dir;
    const std::string path = dir.file("o.npy");
    const float first[2] = {1.0f, 2.0f};
    const float second[3] = {7.0f, 8.0f, 9.0f};
    attn::io::writeNpy(path, attn::io::fromFloat32({2}, first, DType::F32));
    attn::io::writeNpy(path, attn::io::fromFloat32({3}, second, DType::F32));
    const NpyArray back = attn::io::readNpy(path);
    CHECK(back.shape == std::vector<int64_t>{3});
    CHECK(attn::io::toFloat32(back) == std::vector<float>{7.0f, 8.0f, 9.0f});
  }

  TEST_CASE("conversions: float64 in and out, float16 widening is exact") {
    const double values[4] = {0.1, -1e300, 3.0, 1.0 / 3.0};
    const NpyArray f64 = attn::io::fromFloat64({2, 2}, values, DType::F64);
    CHECK(attn::io::toFloat64(f64) == std::vector<double>{0.1, -1e300, 3.0, 1.0 / 3.0});
    const std::vector<float> narrowed = attn::io::toFloat32(f64);
    CHECK(narrowed[0] == 0.1f);
    CHECK(std::isinf(narrowed[1]));
    CHECK(narrowed[1] < 0);
    CHECK(narrowed[3] == static_cast<float>(1.0 / 3.0));

    const float halves[3] = {0.1f, -2.5f, 65504.0f};
    const NpyArray f16 = attn::io::fromFloat32({3}, halves, DType::F16);
    CHECK(f16.data == std::vector<uint8_t>{0x66, 0x2e, 0x00, 0xc1, 0xff, 0x7b});
    CHECK(attn::io::toFloat64(f16) == std::vector<double>{0.0999755859375, -2.5, 65504.0});

    const float singles[2] = {0.5f, 0.1f};
    CHECK(attn::io::toFloat64(attn::io::fromFloat32({2}, singles, DType::F64)) ==
          std::vector<double>{0.5, static_cast<double>(0.1f)});
  }

  // ---- reading what other writers write ---------------------------------------------------

  TEST_CASE("reads a version 2.0 and a version 3.0 header") {
    const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 8.0f, -0.5f};
    for (int major : {2, 3}) {
      INFO("version " << major << ".0");
      std::vector<uint8_t> bytes = makeFile(dictFor("<f4", "(2, 3)"), 0, major);
      CHECK(bytes.size() == 128);  // 12 + 115 + 1, as np.save(version=(2, 0)) writes it
      CHECK(bytes[6] == major);
      CHECK(bytes[8] == 116);
      CHECK(bytes[9] == 0);
      const std::vector<uint8_t> data = floatBytes(values);
      bytes.insert(bytes.end(), data.begin(), data.end());
      const NpyArray array = parse(bytes);
      CHECK(array.dtype == DType::F32);
      CHECK(array.shape == std::vector<int64_t>{2, 3});
      CHECK(attn::io::toFloat32(array) == values);
    }
  }

  TEST_CASE("the header dict is parsed, not pattern-matched") {
    struct Case {
      const char* dict;
      DType dtype;
      std::vector<int64_t> shape;
    };
    const std::vector<Case> cases = {
        {"{'shape': (3,), 'fortran_order': False, 'descr': '<f8'}", DType::F64, {3}},
        {"{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (2, 2)}", DType::F16, {2, 2}},
        {"  {  'descr' :'=f4',\n 'fortran_order':False ,\t'shape':( 4 , 1 , ) , }",
         DType::F32,
         {4, 1}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", DType::F32, {2, 3}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", DType::F32, {}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", DType::F32, {0}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ((2), 3), }", DType::F32, {2, 3}},
    };
    for (const Case& c : cases) {
      INFO(c.dict);
      int64_t n = 1;
      for (int64_t d : c.shape) n *= d;
      const NpyArray array =
          parse(makeFile(c.dict, static_cast<size_t>(n) * attn::io::dtypeSize(c.dtype)));
      CHECK(array.dtype == c.dtype);
      CHECK(array.shape == c.shape);
    }

    // Old writers padded to 16 bytes, not 64; that is still a valid file.
    std::string old("\x93NUMPY\x01\x00\x46\x00", 10);
    old += "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    old += std::string(80 - 10 - 57 - 1, ' ') + "\n";
    REQUIRE(old.size() == 80);
    std::vector<uint8_t> bytes = bytesOf(old);
    bytes.insert(bytes.end(), {0x00, 0x00, 0x80, 0x3f});
    CHECK(attn::io::toFloat32(parse(bytes)) == std::vector<float>{1.0f});
  }

  // ---- one bad file per diagnostic ----------------------------------------------------------

  TEST_CASE("error: not a .npy file") {
    checkThrows({}, "q.npy: not a .npy file (the file is empty)");
    checkThrows(
        bytesOf("PK\x03\x04 this is a zip"),
        "q.npy: not a .npy file but a zip archive (an .npz?); save each array with np.save");
    checkThrows(bytesOf("Q,K,V\n1,2,3\n"), "q.npy: not a .npy file (bad magic bytes)");
    checkThrows(bytesOf("\x93NUMPZ\x01\x00"), "q.npy: not a .npy file (bad magic bytes)");
    checkThrows(bytesOf("\x93NU"),
                "q.npy: truncated: the file ends inside the .npy preamble (3 bytes)");
    checkThrows(bytesOf(std::string("\x93NUMPY\x01\x00\x76", 9)),
                "q.npy: truncated: the file ends inside the .npy preamble (9 bytes)");
    checkThrows(bytesOf(std::string("\x93NUMPY\x02\x00\x76\x00\x00", 11)),
                "q.npy: truncated: the file ends inside the .npy preamble (11 bytes)");
  }

  TEST_CASE("error: unsupported format version") {
    std::vector<uint8_t> bytes = makeFile(dictFor("<f4", "(1,)"), 4);
    bytes[6] = 4;
    checkThrows(bytes, "q.npy: unsupported .npy format version 4.0 (attn reads 1.0, 2.0 and 3.0)");
    bytes[6] = 1;
    bytes[7] = 1;
    checkThrows(bytes, "q.npy: unsupported .npy format version 1.1 (attn reads 1.0, 2.0 and 3.0)");
  }

  TEST_CASE("error: header length beyond the file") {
    std::vector<uint8_t> bytes = makeFile(dictFor("<f4", "(1,)"), 4);
    REQUIRE(bytes.size() == 132);
    bytes[8] = 0x88;
    bytes[9] = 0x13;  // 5000
    checkThrows(bytes,
                "q.npy: truncated: the header length is 5000 bytes, but only 122 bytes follow "
                "the preamble");
  }

  TEST_CASE("error: unsupported dtypes, big-endian, Fortran order") {
    checkThrows(makeFile(dictFor("<i4", "(2,)"), 8),
                "q.npy: unsupported dtype '<i4' (attn reads float16, float32, float64)");
    checkThrows(makeFile(dictFor("|u1", "(2,)"), 2),
                "q.npy: unsupported dtype '|u1' (attn reads float16, float32, float64)");
    checkThrows(makeFile(dictFor("<c8", "(2,)"), 16),
                "q.npy: unsupported dtype '<c8' (attn reads float16, float32, float64)");
    checkThrows(makeFile(dictFor("|f4", "(2,)"), 8),
                "q.npy: unsupported dtype '|f4' (attn reads float16, float32, float64)");
    checkThrows(makeFile(dictFor("|O", "(2,)"), 16),
                "q.npy: unsupported dtype '|O' (attn reads float16, float32, float64)");
    checkThrows(makeFile("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, "
                         "'shape': (2,), }",
                         16),
                "q.npy: unsupported dtype: structured arrays (a list 'descr') are not supported "
                "(attn reads float16, float32, float64)");
    checkThrows(makeFile(dictFor(">f4", "(2,)"), 8),
                "q.npy: big-endian data ('>f4') is not supported; convert with a.astype('<f4')");
    checkThrows(makeFile(dictFor(">f8", "(2,)"), 16),
                "q.npy: big-endian data ('>f8') is not supported; convert with a.astype('<f8')");
    checkThrows(makeFile(dictFor("<f4", "(2, 3)", "True"), 24),
                "q.npy: Fortran-order arrays are not supported; save with np.ascontiguousarray");
  }

  TEST_CASE("error: malformed headers") {
    const std::string pre = "q.npy: malformed header: ";
    // The dict starts at byte 10 of a version 1.0 file.
    checkThrows(makeFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", 4),
                pre + "expected a string key or '}', found the end of the header at byte 128");
    checkThrows(makeFile("['descr', '<f4']", 4),
                pre + "expected '{' opening the header's dict, found '[' at byte 10");
    checkThrows(makeFile("{'descr' '<f4'}", 4),
                pre + "expected ':' after the key 'descr', found ''' at byte 19");
    checkThrows(makeFile("{'descr': '<f4' 'fortran_order': False}", 4),
                pre + "expected ',' or '}' after the value of 'descr', found ''' at byte 26");
    checkThrows(
        makeFile(dictFor("<f4", "(1,)") + " x", 4),
        pre + "expected only spaces and a newline after the dict's '}', found 'x' at byte 68");
    checkThrows(makeFile("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "expected ',' or '}' after the value of 'descr', found 'f' at byte 27");
    checkThrows(makeFile("{'descr': '<f4\n', 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "string starting at byte 20 is not closed");
    checkThrows(makeFile("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "escape sequence in a string at byte 23 (no valid key or dtype needs one)");
    checkThrows(makeFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4),
                pre +
                    "unexpected key 'x' (a .npy header has exactly 'descr', 'fortran_order' "
                    "and 'shape')");
    checkThrows(makeFile("{'descr': '<f4', 'shape': (1,)}", 4),
                pre + "missing key 'fortran_order'");
    checkThrows(
        makeFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4),
        pre + "duplicate key 'descr' at byte 27");
    checkThrows(makeFile("{1: '<f4', 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "expected a string key or '}', found '1' at byte 11");
    checkThrows(makeFile(dictFor("<f4", "(1,)", "0"), 4),
                pre + "'fortran_order' must be True or False, found 0");
    checkThrows(
        makeFile(dictFor("<f4", "(1,)", "false"), 4),
        pre + "unexpected name 'false' at byte 44 (only True, False and None are literals)");
    checkThrows(makeFile("{'descr': 4, 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "'descr' must be a string like '<f4', found an integer");
    checkThrows(makeFile(dictFor("<f4", "[2, 3]"), 24),
                pre + "'shape' must be a tuple of integers like (2, 3), found a list [2, 3]");
    checkThrows(makeFile(dictFor("<f4", "(6)"), 24),
                pre + "'shape' must be a tuple of integers like (2, 3), found an integer 6");
    checkThrows(makeFile(dictFor("<f4", "(True, 3)"), 12),
                pre + "'shape' must be a tuple of integers, found a boolean in (True, 3)");
    checkThrows(makeFile(dictFor("<f4", "(2.0, 3)"), 24),
                pre + "number at byte 61 is not a plain decimal integer");
    checkThrows(makeFile(dictFor("<f4", "(0x10,)"), 64),
                pre + "number at byte 61 is not a plain decimal integer");
    checkThrows(makeFile(dictFor("<f4", "(02, 3)"), 24),
                pre + "integer with a leading zero at byte 61");
    checkThrows(makeFile(dictFor("<f4", "(2 3)"), 24),
                pre + "expected ',' or ')', found '3' at byte 63");
    checkThrows(makeFile(dictFor("<f4", std::string(40, '(') + "1" + std::string(40, ')')), 4),
                pre + "tuples nested too deep at byte 93");
    // Non-ASCII in a version 1.0 header; the same bytes are allowed (UTF-8) in version 3.0,
    // where they are then an unknown dtype.
    checkThrows(makeFile("{'descr': '<f4\xc3\xa9', 'fortran_order': False, 'shape': (1,)}", 4),
                pre + "non-ASCII byte at byte 24 (a version 1.0 or 2.0 header is ASCII)");
    checkThrows(makeFile("{'descr': '<f4\xc3\xa9', 'fortran_order': False, 'shape': (1,)}", 4, 3),
                "q.npy: unsupported dtype '<f4\xc3\xa9' (attn reads float16, float32, float64)");
    checkThrows(
        makeFile(std::string("{'descr': '<f4', 'fortran_order': False,\0 'shape': (1,)}", 56), 4),
        pre + "expected a string key or '}', found byte 0x00 at byte 50");
  }

  TEST_CASE("error: negative, absurd and overflowing shapes") {
    checkThrows(makeFile(dictFor("<f4", "(2, -3)"), 0),
                "q.npy: negative dimension -3 in shape (2, -3)");
    checkThrows(makeFile(dictFor("<f4", "(-1,)"), 0),
                "q.npy: negative dimension -1 in shape (-1,)");
    checkThrows(makeFile(dictFor("<f4", "(99999999999999999999, 1)"), 0),
                "q.npy: absurd dimension 99999999999999999999 in shape (99999999999999999999, 1) "
                "(does not fit in 64 bits)");
    checkThrows(makeFile(dictFor("<f4", "(4294967296, 4294967296)"), 0),
                "q.npy: absurd shape (4294967296, 4294967296): its size in bytes does not fit in "
                "64 bits");
    // A zero dimension does not excuse the others.
    checkThrows(makeFile(dictFor("<f2", "(0, 9223372036854775807)"), 0),
                "q.npy: absurd shape (0, 9223372036854775807): its size in bytes does not fit in "
                "64 bits");
    // Fits in 64 bits, but not in the file: a truncation, found before reading anything.
    checkThrows(makeFile(dictFor("<f8", "(1000000000000,)"), 16),
                "q.npy: truncated: header says 1000000000000 float64 = 8000000000000 bytes of "
                "data, the file has 16");
    std::string dims = "(";
    for (int i = 0; i < 33; ++i) dims += "1, ";
    checkThrows(makeFile(dictFor("<f4", dims + ")"), 4),
                "q.npy: shape has 33 dimensions; attn reads at most 32");
  }

  TEST_CASE("error: truncated data and trailing data") {
    checkThrows(makeFile(dictFor("<f4", "(4, 37, 64)"), 1000),
                "q.npy: truncated: header says 4x37x64 float32 = 37888 bytes of data, the file "
                "has 1000");
    checkThrows(makeFile(dictFor("<f2", "()"), 1),
                "q.npy: truncated: header says scalar float16 = 2 bytes of data, the file has 1");
    checkThrows(makeFile(dictFor("<f4", "(2, 3)"), 24 + 1200),
                "q.npy: 1200 bytes of trailing data after the array (header says 2x3 float32 = "
                "24 bytes)");
    checkThrows(makeFile(dictFor("<f8", "(0, 3)"), 1),
                "q.npy: 1 bytes of trailing data after the array (header says 0x3 float64 = 0 "
                "bytes)");
  }

  TEST_CASE("error: files that cannot be opened, read or written") {
    const TempDir dir;
    const std::string missing = dir.file("q.npy");
    CHECK_THROWS_WITH_AS(attn::io::readNpy(missing),
                         (missing + ": cannot open: No such file or directory").c_str(), NpyError);
    CHECK_THROWS_WITH_AS(
        attn::io::readNpy(dir.path),
        (dir.path + ": cannot read: it is a directory (expected a .npy file)").c_str(), NpyError);
    // readNpy names the file as given in every message.
    const std::string shortFile = dir.file("k.npy");
    {
      const std::vector<uint8_t> bytes = makeFile(dictFor("<f4", "(4, 37, 64)"), 1000);
      std::ofstream out(shortFile, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
    }
    CHECK_THROWS_WITH_AS(attn::io::readNpy(shortFile),
                         (shortFile + ": truncated: header says 4x37x64 float32 = 37888 bytes of "
                                      "data, the file has 1000")
                             .c_str(),
                         NpyError);

    const float one = 1.0f;
    const NpyArray array = attn::io::fromFloat32({1}, &one, DType::F32);
    const std::string nowhere = dir.file("no/such/dir/o.npy");
    std::string message;
    try {
      attn::io::writeNpy(nowhere, array);
    } catch (const NpyError& e) {
      message = e.what();
    }
    CHECK(message.rfind(nowhere + ": cannot create the temporary file " + nowhere + ".tmp.", 0) == 0);
    CHECK(message.find(": No such file or directory (does the directory exist, and is it writable?)") !=
          std::string::npos);

    NpyArray inconsistent = array;
    inconsistent.shape = {2, 3};
    CHECK_THROWS_WITH_AS(attn::io::writeNpy(dir.file("o.npy"), inconsistent),
                         (dir.file("o.npy") + ": inconsistent array: shape 2x3 float32 = 24 bytes, "
                                              "but it holds 4 bytes of data")
                             .c_str(),
                         NpyError);
    CHECK_FALSE(std::filesystem::exists(dir.file("o.npy")));
    CHECK_FALSE(std::filesystem::exists(dir.file("o.npy.tmp")));
    CHECK_THROWS_WITH_AS(attn::io::toFloat32(inconsistent),
                         "toFloat32: inconsistent array: shape 2x3 float32 = 24 bytes, but it "
                         "holds 4 bytes of data",
                         NpyError);
  }

  // ---- float16 -------------------------------------------------------------------------------

  TEST_CASE("float16: rounding to nearest even, overflow, subnormals, inf and nan") {
    CHECK(floatToHalf(1.0f) == 0x3c00);
    CHECK(floatToHalf(-2.5f) == 0xc100);
    CHECK(floatToHalf(65504.0f) == 0x7bff);  // the largest half
    CHECK(floatToHalf(65519.0f) == 0x7bff);  // below the midpoint to 65536: stays finite
    CHECK(floatToHalf(65520.0f) == 0x7c00);  // the midpoint ties to even: infinity
    CHECK(floatToHalf(1e10f) == 0x7c00);
    CHECK(floatToHalf(-1e10f) == 0xfc00);
    CHECK(floatToHalf(6e-8f) == 0x0001);  // nearest is the smallest subnormal
    CHECK(floatToHalf(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(floatToHalf(std::ldexp(1.0f, -25)) == 0x0000);         // tie between 0 and 2^-24: 0
    CHECK(floatToHalf(std::ldexp(1.5f, -25)) == 0x0001);         // above the tie
    CHECK(floatToHalf(std::ldexp(3.0f, -25)) == 0x0002);         // tie 1.5 * 2^-24: to even 2
    CHECK(floatToHalf(-std::ldexp(1.0f, -26)) == 0x8000);        // signed zero
    CHECK(floatToHalf(std::ldexp(1.0f, -14)) == 0x0400);         // the smallest normal
    CHECK(floatToHalf(std::ldexp(1023.0f, -24)) == 0x03ff);      // the largest subnormal
    CHECK(floatToHalf(std::ldexp(2047.0f, -25)) == 0x0400);      // rounds up into the normals
    CHECK(floatToHalf(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie: to even (down)
    CHECK(floatToHalf(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie: to even (up)
    CHECK(floatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3c01);
    CHECK(floatToHalf(0.1f) == 0x2e66);
    CHECK(floatToHalf(-0.0f) == 0x8000);
    CHECK(floatToHalf(std::numeric_limits<float>::infinity()) == 0x7c00);
    CHECK(floatToHalf(-std::numeric_limits<float>::infinity()) == 0xfc00);
    CHECK(floatToHalf(std::numeric_limits<float>::denorm_min()) == 0x0000);
    const uint16_t nan = floatToHalf(std::numeric_limits<float>::quiet_NaN());
    CHECK((nan & 0x7c00) == 0x7c00);
    CHECK((nan & 0x03ff) != 0);
    // A signalling NaN whose payload lives only in the low bits must not become infinity.
    uint32_t snanBits = 0x7f800001;
    float snan;
    std::memcpy(&snan, &snanBits, 4);
    CHECK((floatToHalf(snan) & 0x03ff) != 0);

    CHECK(halfToFloat(0x3c00) == 1.0f);
    CHECK(halfToFloat(0xc100) == -2.5f);
    CHECK(halfToFloat(0x7bff) == 65504.0f);
    CHECK(halfToFloat(0x0001) == std::ldexp(1.0f, -24));
    CHECK(halfToFloat(0x03ff) == std::ldexp(1023.0f, -24));
    CHECK(halfToFloat(0x3555) == 0.333251953125f);
    CHECK(halfToFloat(0x2e66) == 0.0999755859375f);
    CHECK(std::signbit(halfToFloat(0x8000)));
    CHECK(halfToFloat(0x8000) == 0.0f);
    CHECK(halfToFloat(0xfc00) == -std::numeric_limits<float>::infinity());
    CHECK(std::isnan(halfToFloat(0x7e00)));
    CHECK(std::isnan(halfToFloat(0xfc01)));
  }

  TEST_CASE("float16: every half survives half -> float -> half") {
    int nans = 0;
    for (uint32_t h = 0; h <= 0xffff; ++h) {
      const float f = halfToFloat(static_cast<uint16_t>(h));
      if (std::isnan(f)) {
        ++nans;
        CHECK(std::isnan(halfToFloat(floatToHalf(f))));
        continue;
      }
      if (floatToHalf(f) != h)
        FAIL_CHECK("half 0x" << std::hex << h << " came back as 0x" << floatToHalf(f));
      // The midpoint to the next half up rounds to the even one of the two.
      if ((h & 0x7fff) < 0x7bff) {
        const double next = static_cast<double>(halfToFloat(static_cast<uint16_t>(h + 1)));
        const double mid = (static_cast<double>(f) + next) / 2;
        const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
        if (doubleToHalf(mid) != even) FAIL_CHECK("midpoint above half 0x" << std::hex << h);
      }
    }
    CHECK(nans == 2 * 1023);
  }

  TEST_CASE("float16: float64 rounds once, not through float32") {
    // 1 + 2^-11 + 2^-40 is just above the midpoint between the halves 1 and 1 + 2^-10. Through
    // float32 the 2^-40 is lost first, leaving an exact tie that would round down to 1.
    const double above = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
    CHECK(doubleToHalf(above) == 0x3c01);
    CHECK(floatToHalf(static_cast<float>(above)) == 0x3c00);
    const NpyArray array = attn::io::fromFloat64({1}, &above, DType::F16);
    CHECK(array.data == std::vector<uint8_t>{0x01, 0x3c});
    CHECK(doubleToHalf(1e-300) == 0x0000);
    CHECK(doubleToHalf(-1e300) == 0xfc00);
    CHECK(doubleToHalf(std::numeric_limits<double>::denorm_min()) == 0x0000);
  }

  // ---- fuzz -------------------------------------------------------------------------------------

  TEST_CASE("fuzz: 2,000 mutations of a valid file each parse or throw NpyError") {
    const std::vector<float> values = sampleValues(15, 3);
    const NpyArray valid = attn::io::fromFloat32({3, 5}, values.data(), DType::F32);
    const std::vector<uint8_t> original = attn::io::serializeNpy(valid);
    const size_t headerSize = original.size() - valid.data.size();
    // Bytes that matter to the header's grammar, so mutations reach deep into the parser.
    const std::string interesting = "(){}[],:'\" \n-+0123456789LTFN<>=|fiu.\x93\xff";

    std::mt19937 rng(20240607);
    auto below = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    int parsed = 0;
    int rejected = 0;
    for (int iteration = 0; iteration < 2000; ++iteration) {
      std::vector<uint8_t> bytes = original;
      const int edits = 1 + static_cast<int>(below(4));
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        // Most edits land in the preamble and header, where the parsing is.
        const size_t limit = below(4) == 0 ? bytes.size() : std::min(bytes.size(), headerSize);
        const size_t at = below(limit);
        switch (below(6)) {
          case 0:
            bytes[at] = static_cast<uint8_t>(below(256));
            break;
          case 1:
            bytes[at] = static_cast<uint8_t>(interesting[below(interesting.size())]);
            break;
          case 2:
            bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
            break;
          case 3:
            bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                         static_cast<uint8_t>(interesting[below(interesting.size())]));
            break;
          case 4:
            bytes.resize(at);
            break;
          case 5:
            bytes[at] ^= static_cast<uint8_t>(1u << below(8));
            break;
        }
      }
      try {
        const NpyArray array = parse(bytes, "fuzz.npy");
        ++parsed;
        // Whatever parsed is self-consistent.
        CHECK(array.data.size() ==
              static_cast<size_t>(array.numel()) * attn::io::dtypeSize(array.dtype));
      } catch (const NpyError& error) {
        ++rejected;
        CHECK(std::string(error.what()).rfind("fuzz.npy: ", 0) == 0);
      } catch (const std::exception& other) {
        FAIL("mutation " << iteration << " threw a non-NpyError: " << other.what());
      } catch (...) {
        FAIL("mutation " << iteration << " threw something that is not an exception");
      }
    }
    CHECK(parsed + rejected == 2000);
    // Both outcomes occur: mutations in the padding or the data still parse.
    CHECK(parsed >= 10);
    CHECK(rejected > 1000);
  }

}  // TEST_SUITE("npy")
