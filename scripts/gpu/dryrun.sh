#!/usr/bin/env bash
# Rehearses the GPU machine's build here, on the dev machine, to prove that gpu-bundle/ is enough:
# copies the working tree as the device tool would send it (no build folders, no data/) plus
# gpu-bundle/ to /tmp/attn-gpu-dryrun, and runs scripts/gpu/build.sh there in a private mount
# namespace in which this machine's own ANTLR tool and runtime, CLI11, doctest, nlohmann_json,
# PCRE2 development files and (with --shim) pkg-config are hidden. LibTorch is the dev machine's
# (1.13, CPU); the LLVM backend is off, as there. Then it checks where CMake found each package and
# runs attn_tests -ts=parser,cuda (the cuda suite needs NVRTC, not a GPU).
#
#   scripts/gpu/dryrun.sh [--shim] [--cxx20] [-jN]
#     --shim   hide pkg-config too, so that build.sh uses scripts/gpu/pkgconfig_shim.py
#     --cxx20  force the C++20-for-LibTorch-files wrapper (ATTN_GPU_CXX_STD=20)
#
# Needs root (unshare -m). Leaves /tmp/attn-gpu-dryrun behind for inspection.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dest=/tmp/attn-gpu-dryrun
jobs=2
shim=0
cxx=auto
for a in "$@"; do
  case "$a" in
    --shim) shim=1 ;;
    --cxx20) cxx=20 ;;
    -j*) jobs=${a#-j} ;;
    *) echo "dryrun: unknown argument $a" >&2; exit 1 ;;
  esac
done
[ -f gpu-bundle/MANIFEST.txt ] || { echo "dryrun: no gpu-bundle/: run scripts/gpu/prepare_bundle.sh" >&2; exit 1; }

echo "dryrun: copying the working tree to $dest"
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name 'build-gpu' ! -name 'build-gpu-tools' -exec rm -rf {} +
# What travels: tracked and untracked-not-ignored files (so not the .gitignore'd build folders and
# data), plus the carried gpu-bundle/.
tar -C "$root" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./data \
    --exclude=./demo-run --exclude=./compile_commands.json --exclude='*.attn-fmt.tmp' -cf - . | tar -C "$dest" -xf -
du -sh --exclude=./build-gpu --exclude=./build-gpu-tools "$dest" | sed 's/^/dryrun: tree + bundle: /'

hide_dirs=(/usr/include/antlr4-runtime /usr/include/CLI /usr/include/doctest /usr/include/nlohmann
           /usr/lib/x86_64-linux-gnu/cmake/antlr4-runtime /usr/lib/x86_64-linux-gnu/cmake/antlr4-generator
           /usr/lib/cmake/doctest /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json)
hide_files=(/usr/bin/antlr4 /usr/include/pcre2.h /usr/lib/x86_64-linux-gnu/pkgconfig/libpcre2-8.pc
            /usr/lib/x86_64-linux-gnu/libantlr4-runtime.so.4.9 /usr/lib/x86_64-linux-gnu/libantlr4-runtime.a
            /usr/lib/x86_64-linux-gnu/libpcre2-8.a)
[ "$shim" = 1 ] && hide_files+=(/usr/bin/pkgconf)

inner=$(mktemp /tmp/attn-dryrun-inner.XXXXXX.sh)
trap 'rm -f "$inner"' EXIT
{
  echo 'set -uo pipefail'
  echo 'empty=$(mktemp -d)'
  for d in "${hide_dirs[@]}"; do [ -d "$d" ] && echo "mount --bind \"\$empty\" $d"; done
  for f in "${hide_files[@]}"; do [ -e "$f" ] && echo "mount --bind /dev/null $f"; done
  echo 'echo "dryrun: hidden: $(ls /usr/include/CLI | wc -l) files in /usr/include/CLI, antlr4 --version: $(antlr4 2>&1 | head -1), pkg-config --version: $(pkg-config --version 2>&1 | head -1)"'
  echo "cd $dest"
  echo "export ATTN_TORCH_PREFIX=/usr/lib/x86_64-linux-gnu/cmake ATTN_GPU_JOBS=$jobs ATTN_GPU_CXX_STD=$cxx"
  [ "$shim" = 1 ] && echo "export ATTN_GPU_PKG_CONFIG=shim"
  echo 'unset OUT; export CCACHE_DISABLE=1   # honest build times (the GPU machine has a cold cache, if any)'
  echo 'time bash scripts/gpu/build.sh || exit $?'
  echo 'echo; echo "=== dryrun: where CMake found each package (all must be in gpu-bundle/) ==="'
  echo "grep -E '^(antlr4-runtime_DIR|CLI11_DIR|doctest_DIR|nlohmann_json_DIR|pkgcfg_lib_PCRE2_pcre2-8|PKG_CONFIG_EXECUTABLE|Torch_DIR|ATTN_ANTLR_GENERATED_DIR):' build-gpu/CMakeCache.txt"
  echo 'bad=$(grep -E "^(antlr4-runtime_DIR|CLI11_DIR|doctest_DIR|nlohmann_json_DIR|pkgcfg_lib_PCRE2_pcre2-8|ATTN_ANTLR_GENERATED_DIR):" build-gpu/CMakeCache.txt | grep -v "/gpu-bundle/")'
  echo '[ -z "$bad" ] || { echo "dryrun: FAILED: found outside the bundle: $bad"; exit 1; }'
  echo 'grep -q -- "-luuid" build-gpu/build.ninja && { echo "dryrun: FAILED: links -luuid"; exit 1; }'
  echo 'echo "include dirs seen by the compiler:"; grep -oE "(-I|-isystem )[^ ]*(gpu-bundle|antlr4-runtime|/usr/include)[^ ]*" build-gpu/build.ninja | sort | uniq -c'
  echo 'echo "RUNPATH of attn_tests: $(readelf -d build-gpu/bin/attn_tests | grep -oE "R(UN)?PATH.*")"'
  echo 'ldd build-gpu/bin/attn_tests | grep -E "antlr|pcre2"'
  echo 'echo; echo "=== dryrun: build-gpu/bin/attn_tests -ts=parser,cuda ==="'
  echo 'build-gpu/bin/attn_tests -ts=parser,cuda --no-intro=true 2>&1 | tail -15'
}  > "$inner"
unshare -m --propagation private bash "$inner"
