// NumPy .npy files: how `attn run` takes its tensors in (q, k, v, dout) and gives them back
// (o, dq, dk, dv).
//
// What it is: a strict reader of .npy format versions 1.0, 2.0 and 3.0 for the three dtypes
// attn computes with (little-endian float16, float32, float64, C order, any shape including
// the scalar ()), a writer that produces the same bytes as np.save (version 1.0, or 2.0 when
// the header does not fit in 64 KiB), and exact IEEE float16 <-> float32/float64 conversion.
// Every malformed or unsupported file is rejected with an NpyError whose message names the
// file, says what is wrong and, where there is one, how to fix it.
//
// What it deliberately is not: a general NumPy library. No integer, complex, structured,
// object (pickled) or big-endian arrays, no Fortran order, no .npz archives, no memory
// mapping, and no LibTorch: a later layer turns an NpyArray into a tensor. Nothing is
// guessed: trailing bytes, a short file or an unknown header key are errors, not warnings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace attn::io {

/// The element types attn reads and writes; always little-endian.
enum class DType { F16, F32, F64 };

/// Bytes per element: 2, 4, 8.
size_t dtypeSize(DType dtype);
/// The NumPy name: "float16", "float32", "float64".
const char* dtypeName(DType dtype);
/// The .npy header's descr string: "<f2", "<f4", "<f8".
const char* dtypeDescr(DType dtype);

/// A dense array as stored in a .npy file.
///   data: numel() * dtypeSize(dtype) bytes, C (row-major) order, little-endian.
///   shape: {} is a scalar (one element); a dimension may be 0 (no elements).
struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  /// The product of the shape (1 for a scalar).
  int64_t numel() const;
};

/// A bad, unsupported or unreadable file (or an inconsistent NpyArray given to a writer).
/// what() is complete and meant for the user as it is, e.g.
/// "q.npy: big-endian data ('>f4') is not supported; convert with a.astype('<f4')".
class NpyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Reads the file at `path`; messages name it as given. Throws NpyError.
NpyArray readNpy(const std::string& path);

/// The same as readNpy on the bytes of a file held in memory; `name` is used in messages.
/// Reads nothing outside [bytes, bytes + size), whatever the bytes are. Throws NpyError.
NpyArray parseNpy(const std::string& name, const uint8_t* bytes, size_t size);

/// Writes `array` to `path` atomically (support::writeFileAtomically: a fresh temporary file
/// next to `path`, created O_EXCL | O_NOFOLLOW, every write checked, fsync, renamed over
/// `path`), so a reader never sees a half-written file and a link planted in the output
/// directory is never followed (a link at `path` itself is refused). Throws NpyError when
/// the array is inconsistent (data size != numel * element size) or the write fails; the
/// previous file at `path`, if any, is then untouched.
void writeNpy(const std::string& path, const NpyArray& array);

/// The bytes writeNpy would write: identical to np.save of the same array.
std::vector<uint8_t> serializeNpy(const NpyArray& array);

/// Shape as shown in messages: "4x37x64", "5" for 1-D, "scalar" for ().
std::string formatShape(const std::vector<int64_t>& shape);

/// All elements as float32 (float64 is rounded to nearest, float16 is exact).
std::vector<float> toFloat32(const NpyArray& array);
/// All elements as float64 (exact for every dtype).
std::vector<double> toFloat64(const NpyArray& array);

/// An array of `shape` in dtype `target` from numel(shape) values at `values`, each
/// rounded to nearest even when `target` is narrower.
NpyArray fromFloat32(const std::vector<int64_t>& shape, const float* values, DType target);
NpyArray fromFloat64(const std::vector<int64_t>& shape, const double* values, DType target);

/// IEEE 754 binary16 conversions. To half: round to nearest, ties to even; overflow gives
/// infinity; results below the smallest subnormal (2^-24) round to signed zero; NaN stays
/// NaN (quiet, sign and top payload bits kept). From half: exact.
uint16_t floatToHalf(float value);
uint16_t doubleToHalf(double value);
float halfToFloat(uint16_t bits);

}  // namespace attn::io
