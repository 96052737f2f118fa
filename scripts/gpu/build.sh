#!/usr/bin/env bash
# Builds attn on the lent GPU machine (one H100/H200, 16 cores, no network, no Java, no Debian -dev
# packages, no LLVM; nvcc + NVRTC 13.0 in /usr/local/cuda; PyTorch 2.11 whose wheel holds LibTorch),
# from the repository root, with gpu-bundle/ carried (make it here with scripts/gpu/prepare_bundle.sh).
#
#   bash scripts/gpu/build.sh && build-gpu/bin/attn_tests -ts=cuda --no-intro=true
#
# What it does: prints the machine (OS, glibc, g++, cmake, nvcc, GPU, Python, torch); checks the
# bundle (its generated parser must match grammar/Attn.g4); compiles and runs a two-line program
# against the bundled ANTLR runtime and PCRE2; configures build-gpu/ (Ninja, Release, LLVM backend
# off, LibTorch from the wheel, CUDA backend on, everything else from the bundle); builds attn,
# attn_tests, cuda_report, attn_bench and attn_torch_ops. If LibTorch's headers
# refuse C++17 (newer LibTorch wants C++20), it rebuilds with a compiler wrapper that compiles the
# files including LibTorch as C++20 (make_cxx_wrapper below); CMakeLists.txt stays as it is.
#
# Logs go to $OUT (the device tool brings them back) or, without $OUT, to build-gpu-logs/:
#   gpu-env.txt  gpu-configure.log  gpu-build.log
#
# Settings (environment):
#   ATTN_GPU_BUNDLE      the bundle (default gpu-bundle)
#   ATTN_GPU_BUILD_DIR   the build folder (default build-gpu)
#   ATTN_GPU_JOBS        parallel jobs (default: nproc, 16 there)
#   ATTN_GPU_TARGETS     what to build (default "attn attn_tests cuda_report attn_bench attn_torch_ops";
#                        a target this CMakeLists.txt does not define is skipped)
#   ATTN_GPU_BUILD_TYPE  default Release
#   ATTN_GPU_CXX_STD     auto (default: C++17, C++20 for LibTorch files if C++17 fails there), 17, or 20
#   ATTN_TORCH_PREFIX    LibTorch's CMake prefix, instead of asking python3's torch
#   ATTN_GPU_PKG_CONFIG  a pkg-config to use; "shim" forces scripts/gpu/pkgconfig_shim.py (used
#                        anyway when the machine has no pkg-config/pkgconf)
#   ATTN_GPU_ALLOW_STALE_GRAMMAR=1   build even if grammar/Attn.g4 changed since the bundle was made
#
# Exit status: 0 built; 2 bundle missing or stale; 3 a tool missing; 4 the bundled libraries do
# not link or run here; 5 configure failed; 6 build failed; 7 a built program misses a library.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 3
root=$PWD
bundle=$(realpath -m "${ATTN_GPU_BUNDLE:-$root/gpu-bundle}")
build=$(realpath -m "${ATTN_GPU_BUILD_DIR:-$root/build-gpu}")
jobs=${ATTN_GPU_JOBS:-$(nproc)}
targets=(${ATTN_GPU_TARGETS:-attn attn_tests cuda_report attn_bench attn_torch_ops})
build_type=${ATTN_GPU_BUILD_TYPE:-Release}
cxx_std=${ATTN_GPU_CXX_STD:-auto}
logdir=${OUT:-$root/build-gpu-logs}
mkdir -p "$logdir"
env_log=$logdir/gpu-env.txt
configure_log=$logdir/gpu-configure.log
build_log=$logdir/gpu-build.log
: > "$configure_log"
: > "$build_log"
t_start=$SECONDS

section() { echo; echo "=== build.sh: $* ==="; }
fail() {
  local code=$1; shift
  echo
  echo "build.sh: FAILED ($code): $*"
  echo "build.sh: logs: $logdir"
  exit "$code"
}
show_errors() {  # LOG: the first compiler errors and the end of the log
  echo "--- first errors in $1:"
  grep -n -E "error:|Error|FAILED:|undefined reference|cannot find|not found" "$1" | head -40
  echo "--- last 40 lines of $1:"
  tail -40 "$1"
}

cuda_home=${CUDA_HOME:-/usr/local/cuda}
export PATH="$cuda_home/bin:$PATH"

# --- 1. the machine ----------------------------------------------------------------------------
section "the machine"
{
  echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "uname:      $(uname -a)"
  echo "os:         $( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo '?')"
  echo "glibc:      $(ldd --version 2>&1 | head -1)"
  echo "g++:        $(g++ --version 2>&1 | head -1) ($(command -v g++ || echo missing))"
  echo "libstdc++:  $(strings "$(g++ -print-file-name=libstdc++.so.6 2>/dev/null)" 2>/dev/null | grep -E '^GLIBCXX_3\.4\.[0-9]+$' | sort -V | tail -1)"
  echo "cmake:      $(cmake --version 2>&1 | head -1) ($(command -v cmake || echo missing))"
  echo "ninja:      $(ninja --version 2>&1) ($(command -v ninja || echo missing))"
  echo "nvcc:       $(nvcc --version 2>&1 | tail -2 | tr '\n' ' ')"
  echo "gpu:        $(nvidia-smi -L 2>&1 | tr '\n' ' ')"
  echo "pkg-config: $(command -v pkg-config || command -v pkgconf || echo 'none (the shim will do)')"
  echo "ccache:     $(command -v ccache || echo none)"
  echo "cores:      $(nproc); memory: $(free -g 2>/dev/null | awk '/^Mem/{print $2 " GiB"}')"
  echo "python3:    $(python3 --version 2>&1) ($(command -v python3 || echo missing))"
  python3 - <<'EOF' 2>&1
try:
    import torch
    print("torch:      %s, CUDA %s, cxx11 ABI %s, GPU available %s" % (torch.__version__, torch.version.cuda,
          torch._C._GLIBCXX_USE_CXX11_ABI, torch.cuda.is_available()))
    print("torch cmake prefix: %s" % torch.utils.cmake_prefix_path)
except Exception as e:
    print("torch:      not importable (%s)" % e)
EOF
} | tee "$env_log"

# --- 2. tools and the bundle -----------------------------------------------------------------------
section "tools and the bundle"
for tool in g++ cmake ninja python3; do
  command -v "$tool" >/dev/null || fail 3 "$tool is missing on this machine"
done
cmake_version=$(cmake --version | head -1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?')
if [ "$(printf '%s\n3.22\n' "$cmake_version" | sort -V | head -1)" != 3.22 ]; then
  fail 3 "CMake $cmake_version is older than 3.22 (CMakeLists.txt's minimum)"
fi
[ -x "$cuda_home/bin/nvcc" ] || echo "build.sh: warning: no $cuda_home/bin/nvcc (LibTorch's CMake files may want it)"

[ -f "$bundle/MANIFEST.txt" ] || fail 2 "no bundle at $bundle: run scripts/gpu/prepare_bundle.sh on the dev machine and carry gpu-bundle"
head -2 "$bundle/MANIFEST.txt"
want_sha=$(awk '$1 == "grammar_sha256" {print $2}' "$bundle/MANIFEST.txt")
have_sha=$(sha256sum grammar/Attn.g4 | cut -d' ' -f1)
if [ "$want_sha" != "$have_sha" ]; then
  if [ "${ATTN_GPU_ALLOW_STALE_GRAMMAR:-0}" = 1 ]; then
    echo "build.sh: warning: grammar/Attn.g4 changed since the bundle was made (ATTN_GPU_ALLOW_STALE_GRAMMAR=1)"
  else
    fail 2 "grammar/Attn.g4 changed since the bundle was made: re-run scripts/gpu/prepare_bundle.sh on the dev machine"
  fi
fi
lib=$bundle/usr/lib/x86_64-linux-gnu
antlr_so=$(cd "$lib" && ls libantlr4-runtime.so.* 2>/dev/null | head -1)
[ -n "$antlr_so" ] && [ -f "$lib/libpcre2-8.so" ] || fail 2 "the bundle lacks its shared libraries: re-run scripts/gpu/prepare_bundle.sh"

# pkg-config: the machine's own, else a small Python stand-in that reads the bundle's .pc file.
tools=$build-tools
mkdir -p "$tools"
pkg_config=${ATTN_GPU_PKG_CONFIG:-$(command -v pkg-config || command -v pkgconf || echo shim)}
if [ "$pkg_config" = shim ]; then
  pkg_config=$tools/pkg-config
  printf '#!/bin/sh\nexec python3 "%s" "$@"\n' "$root/scripts/gpu/pkgconfig_shim.py" > "$pkg_config"
  chmod +x "$pkg_config"
fi
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
echo "pkg-config: $pkg_config -> libpcre2-8 $("$pkg_config" --modversion libpcre2-8 2>&1) $("$pkg_config" --cflags --libs libpcre2-8 2>&1)"

# --- 3. do the bundled libraries link and run here? ---------------------------------------------------
section "the bundled ANTLR runtime and PCRE2 on this machine"
smoke=$tools/smoke
mkdir -p "$smoke"
cat > "$smoke/smoke.cpp" <<'EOF'
#include "antlr4-runtime.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <iostream>
int main() {
  antlr4::ANTLRInputStream in("attn");
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("\\p{L}+"), PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (re == nullptr || in.size() != 4) return 1;
  pcre2_code_free(re);
  std::cout << "ANTLR runtime " << antlr4::RuntimeMetaData::VERSION << " and PCRE2 link and run here" << std::endl;
  return 0;
}
EOF
if ! g++ -std=c++17 -O0 -isystem "$bundle/usr/include/antlr4-runtime" -isystem "$bundle/usr/include" \
       "$smoke/smoke.cpp" -o "$smoke/smoke" "$lib/$antlr_so" -L"$lib" -lpcre2-8 -Wl,-rpath,"$lib" \
       > "$smoke/smoke.log" 2>&1 || ! "$smoke/smoke" >> "$smoke/smoke.log" 2>&1; then
  cat "$smoke/smoke.log"
  echo "needed versions:"
  objdump -T "$lib/$antlr_so" 2>/dev/null | grep -oE '(GLIBC|GLIBCXX|CXXABI)_[0-9.]+' | sort -uV | tail -4
  fail 4 "the bundled ANTLR runtime / PCRE2 (built on Debian 12: glibc >= 2.32, GLIBCXX_3.4.30) do not work with this machine's g++/glibc"
fi
tail -1 "$smoke/smoke.log"

# --- 4. LibTorch -------------------------------------------------------------------------------------
section "LibTorch"
torch_prefix=${ATTN_TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)}
[ -n "$torch_prefix" ] && [ -d "$torch_prefix" ] || fail 3 "no LibTorch: python3 cannot import torch and ATTN_TORCH_PREFIX is unset"
echo "torch cmake prefix: $torch_prefix"
# The wheel's libtorch_cuda.so needs libraries of the nvidia-* wheels (cuDNN, cuBLAS, NCCL...), found
# through its $ORIGIN RUNPATH when running; tell the linker where they are too.
rpath_link=$(python3 - <<'EOF' 2>/dev/null
import glob, os, torch
torch_dir = os.path.dirname(torch.__file__)
site = os.path.dirname(torch_dir)
dirs = [os.path.join(torch_dir, "lib")] + sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))
print(":".join(d for d in dirs if os.path.isdir(d)))
EOF
)
link_flags=${rpath_link:+-Wl,-rpath-link,$rpath_link}
echo "linker -rpath-link: ${rpath_link:-(none)}"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export CUDA_HOME=$cuda_home CUDACXX=${CUDACXX:-$cuda_home/bin/nvcc}

# --- 5. configure and build ----------------------------------------------------------------------------
# make_cxx_wrapper: a compiler for -DCMAKE_CXX_COMPILER that compiles the files that see LibTorch's headers as C++20
# (and those that also see the ANTLR 4.9 headers with -fno-char8_t, which they need under C++20).
make_cxx_wrapper() {
  local real
  real=$(command -v g++)
  cat > "$tools/cxx20-for-torch" <<EOF
#!/usr/bin/env bash
# Made by scripts/gpu/build.sh: g++, with C++20 for files that include LibTorch (torch/include).
torch=0; antlr=0
for a in "\$@"; do
  case "\$a" in *torch/include*|*torch/csrc/api/include*) torch=1 ;; esac
  case "\$a" in *antlr4-runtime*) antlr=1 ;; esac
done
if [ \$torch = 1 ]; then
  args=()
  for a in "\$@"; do
    case "\$a" in -std=c++1[47]|-std=gnu++1[47]) a=-std=c++20 ;; esac
    args+=("\$a")
  done
  [ \$antlr = 1 ] && args+=(-fno-char8_t)
  exec "$real" "\${args[@]}"
fi
exec "$real" "\$@"
EOF
  chmod +x "$tools/cxx20-for-torch"
}

configure() {  # STD(17|20)
  local std=$1 compiler
  compiler=$(command -v g++)
  if [ "$std" = 20 ]; then make_cxx_wrapper; compiler=$tools/cxx20-for-torch; fi
  # Another compiler than last time (C++17 <-> C++20): start from an empty build folder.
  if [ -f "$build/CMakeCache.txt" ] && [ "$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")" != "$compiler" ]; then
    rm -rf "$build"
  fi
  local args=(
    -S "$root" -B "$build" -G Ninja
    -DCMAKE_BUILD_TYPE="$build_type"
    -DCMAKE_CXX_COMPILER="$compiler"
    -DATTN_WITH_LLVM=OFF -DATTN_WITH_TORCH=ON -DATTN_WITH_CUDA=ON
    -DATTN_ANTLR_GENERATED_DIR="$bundle/grammar"
    "-DCMAKE_PREFIX_PATH=$bundle/usr;$torch_prefix"
    -Dantlr4-runtime_DIR="$lib/cmake/antlr4-runtime"
    -DCLI11_DIR="$bundle/usr/share/cmake/CLI11"
    -Ddoctest_DIR="$bundle/usr/lib/cmake/doctest"
    -Dnlohmann_json_DIR="$bundle/usr/share/cmake/nlohmann_json"
    -DPKG_CONFIG_EXECUTABLE="$pkg_config"
    -DCUDAToolkit_ROOT="$cuda_home"
    -DCUDA_TOOLKIT_ROOT_DIR="$cuda_home"
    -DCMAKE_CUDA_ARCHITECTURES=90
    -DCMAKE_POLICY_DEFAULT_CMP0146=OLD
  )
  [ -x "$cuda_home/bin/nvcc" ] && args+=(-DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc")
  [ -n "$link_flags" ] && args+=("-DCMAKE_EXE_LINKER_FLAGS=$link_flags" "-DCMAKE_SHARED_LINKER_FLAGS=$link_flags")
  echo "cmake ${args[*]}" | tee -a "$configure_log"
  local t0=$SECONDS
  if ! cmake "${args[@]}" >> "$configure_log" 2>&1; then
    show_errors "$configure_log"
    fail 5 "configure failed (C++$std); full log: $configure_log"
  fi
  echo "configured in $((SECONDS - t0)) s (C++$std for LibTorch files)"
  grep -E '^(antlr4-runtime_DIR|CLI11_DIR|doctest_DIR|nlohmann_json_DIR|Torch_DIR|PKG_CONFIG_EXECUTABLE|CUDAToolkit_NVCC_EXECUTABLE|CMAKE_CXX_COMPILER):' \
    "$build/CMakeCache.txt" | sed 's/^/  /'
  grep -E '^pkgcfg_lib_PCRE2_pcre2-8:' "$build/CMakeCache.txt" | sed 's/^/  /'
}

build_targets() {  # TARGET...
  local t0=$SECONDS rc
  echo "ninja -j$jobs $*" | tee -a "$build_log"
  ninja -C "$build" -j "$jobs" "$@" >> "$build_log" 2>&1
  rc=$?
  echo "  ($((SECONDS - t0)) s, exit $rc)"
  return $rc
}

section "configure ($build)"
std=17
[ "$cxx_std" = 20 ] && std=20
configure "$std"

section "build"
# All targets at once. If it fails where LibTorch's headers want C++20 (newer LibTorch does), build
# again with the C++20-for-LibTorch-files wrapper.
build_all() {
  local all_targets t
  all_targets=$(ninja -C "$build" -t targets all)
  available=()
  for t in "${targets[@]}"; do
    if grep -q "^$t:" <<< "$all_targets"; then available+=("$t"); else echo "build.sh: no target $t here: skipped"; fi
  done
  [ "${#available[@]}" -gt 0 ] || fail 6 "none of the targets (${targets[*]}) exist"
  build_targets "${available[@]}"
}
if ! build_all; then
  if [ "$cxx_std" = auto ] && [ "$std" = 17 ] &&
     grep -q -E "C\+\+20|c\+\+20|c\+\+2a|-fconcepts" "$build_log"; then
    show_errors "$build_log" | head -30
    echo "build.sh: LibTorch's headers seem to need C++20: configuring again with C++20 for the files that include them"
    std=20
    configure 20
    build_all || { show_errors "$build_log"; fail 6 "the build failed, with C++17 and with C++20 for LibTorch files (log: $build_log)"; }
  else
    show_errors "$build_log"
    fail 6 "the build failed (log: $build_log)"
  fi
fi

# --- 6. can the programs start? ---------------------------------------------------------------------
section "the built programs"
missing=0
for exe in "$build"/bin/*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  notfound=$(ldd "$exe" 2>&1 | grep "not found")
  if [ -n "$notfound" ]; then echo "$(basename "$exe"): $notfound"; missing=1; fi
done
find "$build/bin" "$build/lib" -maxdepth 1 -type f -printf '  %10s  %p\n' 2>/dev/null | sort -k2
if [ -x "$build/bin/attn_tests" ]; then
  echo "attn_tests loads: $(ldd "$build/bin/attn_tests" | grep -oE '(libantlr4-runtime|libpcre2-8|libtorch_cuda|libtorch_cpu|libc10_cuda|libnvrtc)[^ ]* => [^ ]+' | tr '\n' ' ')"
fi
[ "$missing" = 0 ] || fail 7 "a built program misses a shared library (see above)"

echo
echo "build.sh: OK: built ${available[*]} in $build (C++$std for LibTorch files, $build_type, -j$jobs) in $((SECONDS - t_start)) s"
