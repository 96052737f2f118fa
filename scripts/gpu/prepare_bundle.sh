#!/usr/bin/env bash
# Makes gpu-bundle/ (git-ignored, at the repository root): what building attn on the lent GPU
# machine needs and that machine lacks (no network, no Java, no Debian -dev packages). Runs here,
# on the Debian 12 dev machine; running it again rebuilds the bundle from scratch.
#
#   scripts/gpu/prepare_bundle.sh          then carry "gpu-bundle" with the device tool
#
# gpu-bundle/
#   usr/                       a prefix for CMAKE_PREFIX_PATH, laid out as Debian installs it:
#     include/antlr4-runtime/  ANTLR4 C++ runtime headers (libantlr4-runtime-dev, the dev machine's version)
#     include/CLI/ doctest/ nlohmann/ pcre2.h xxhash.h   header-only CLI11, doctest, nlohmann_json, xxhash; PCRE2's header
#     lib/x86_64-linux-gnu/    libantlr4-runtime.so.4.9, libpcre2-8.so(.0), cmake/antlr4-runtime/,
#                              pkgconfig/libpcre2-8.pc (prefix made relative: ${pcfiledir}/../../..)
#     lib/cmake/doctest/  share/cmake/CLI11/  share/cmake/nlohmann_json/    CMake package configs
#   grammar/                   the parser that antlr4 generates from grammar/Attn.g4 (.h, .cpp),
#                              for -DATTN_ANTLR_GENERATED_DIR
#   licenses/                  each package's copyright file
#   MANIFEST.txt               package versions, the grammar's sha256 (build.sh checks it), sizes
#
# The ANTLR runtime's CMake file is patched in the bundle only: it names `uuid` as a link
# dependency (the library needs no libuuid; the GPU machine has no libuuid.so to link) and checks
# for the static libantlr4-runtime.a, which the bundle leaves out.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bundle=$root/gpu-bundle

say() { echo "prepare_bundle: $*"; }
die() { echo "prepare_bundle: error: $*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "the GPU machine is x86-64; this machine is $(uname -m): its binaries would not run there"
command -v dpkg-query >/dev/null || die "needs a Debian machine (dpkg-query)"
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
[ "$arch" = x86_64-linux-gnu ] || die "unexpected multiarch triplet '$arch'"

stage=$(mktemp -d /tmp/attn-gpu-bundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT
sys=$stage/sys      # the packages' files, as installed (or as extracted from their .debs)
new=$stage/bundle   # the bundle being made; it replaces gpu-bundle/ at the end
mkdir -p "$sys" "$new"

# --- 1. the packages' files -----------------------------------------------------------------
# From the installed packages (so exactly the versions this machine builds with); a package that
# is not installed (or every package, with ATTN_BUNDLE_FROM_DEBS=1) is downloaded with apt-get
# download and unpacked with dpkg -x instead.
packages=(libantlr4-runtime-dev libantlr4-runtime4.9 libcli11-dev doctest-dev nlohmann-json3-dev
          libpcre2-dev libpcre2-8-0 libxxhash-dev)
declare -A version
for p in "${packages[@]}"; do
  if [ "${ATTN_BUNDLE_FROM_DEBS:-0}" != 1 ] &&
     dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    version[$p]="$(dpkg-query -W -f='${Version}' "$p") (installed)"
    dpkg-query -L "$p" | while IFS= read -r f; do
      if [ -f "$f" ] || [ -L "$f" ]; then echo "${f#/}"; fi
    done | (cd / && tar --no-recursion -cf - -T -) | tar -xf - -C "$sys"
  else
    say "$p is not installed: fetching its .deb"
    (cd "$stage" && apt-get download -q "$p") || die "apt-get download $p failed (run 'apt-get update' first?)"
    deb=$(ls "$stage"/"${p}"_*.deb | head -1)
    version[$p]="$(dpkg-deb -f "$deb" Version) (.deb)"
    dpkg -x "$deb" "$sys/"
  fi
done

# --- 2. pick what the GPU build needs --------------------------------------------------------
u=$new/usr
lib=$u/lib/$arch
mkdir -p "$u/include" "$lib/cmake" "$lib/pkgconfig" "$u/lib/cmake" "$u/share/cmake" "$new/licenses"
copy_dir() { [ -d "$sys/usr/$1" ] || die "missing /usr/$1"; mkdir -p "$(dirname "$u/$1")"; cp -a "$sys/usr/$1" "$u/$1"; }
copy_dir include/antlr4-runtime
copy_dir include/CLI
copy_dir include/doctest
copy_dir include/nlohmann
cp -a "$sys/usr/include/pcre2.h" "$u/include/"
cp -a "$sys/usr/include/xxhash.h" "$u/include/"   # support/ContentHash.cpp inlines XXH64 from it (no library)
copy_dir "lib/$arch/cmake/antlr4-runtime"
copy_dir lib/cmake/doctest
copy_dir share/cmake/CLI11
copy_dir share/cmake/nlohmann_json

# Shared libraries as plain files (no links to go wrong in transit), debug info stripped.
antlr_so=$(cd "$sys/usr/lib/$arch" && ls libantlr4-runtime.so.* | head -1)
[ -n "$antlr_so" ] || die "libantlr4-runtime.so.* not found"
cp -L "$sys/usr/lib/$arch/$antlr_so" "$lib/$antlr_so"
cp -L "$sys/usr/lib/$arch/libpcre2-8.so" "$lib/libpcre2-8.so"      # for linking (-lpcre2-8)
cp -L "$sys/usr/lib/$arch/libpcre2-8.so.0" "$lib/libpcre2-8.so.0"  # its SONAME, for running
chmod 644 "$lib"/*.so*
strip --strip-debug "$lib"/*.so* 2>/dev/null || true

# PCRE2's pkg-config file, relocatable: prefix relative to the .pc file's own folder.
sed -e 's|^prefix=.*|prefix=${pcfiledir}/../../..|' "$sys/usr/lib/$arch/pkgconfig/libpcre2-8.pc" > "$lib/pkgconfig/libpcre2-8.pc"
grep -q '^prefix=${pcfiledir}/../../..$' "$lib/pkgconfig/libpcre2-8.pc" || die "could not relocate libpcre2-8.pc"

# The ANTLR runtime's imported targets: drop `uuid` from the link interface and the existence
# check of the static library, which is not bundled.
targets_none=$lib/cmake/antlr4-runtime/antlr4-targets-none.cmake
[ -f "$targets_none" ] || die "missing $targets_none"
sed -i -e '/IMPORTED_LINK_INTERFACE_LIBRARIES_NONE "uuid"/d' \
       -e '/_IMPORT_CHECK_TARGETS antlr4_static/d' \
       -e '/_IMPORT_CHECK_FILES_FOR_antlr4_static/d' "$targets_none"
sed -i '1i # attn gpu-bundle: patched by scripts/gpu/prepare_bundle.sh (no "uuid" link dependency, no check for the unbundled libantlr4-runtime.a)' "$targets_none"
if grep -v '^#' "$targets_none" | grep -q -e uuid -e '_IMPORT_CHECK_FILES_FOR_antlr4_static'; then
  die "patching $targets_none failed"
fi
grep -q "IMPORTED_LOCATION_NONE \"\${_IMPORT_PREFIX}/lib/$arch/$antlr_so\"" "$targets_none" \
  || die "$targets_none does not name lib/$arch/$antlr_so"

for p in "${packages[@]}"; do
  if [ -f "$sys/usr/share/doc/$p/copyright" ]; then cp "$sys/usr/share/doc/$p/copyright" "$new/licenses/$p.copyright"; fi
done

# --- 3. the generated parser ------------------------------------------------------------------
# Generated by the project's own CMake rule (antlr4 with the flags CMakeLists.txt gives it), in a
# private build folder configured without the slow backends, so build/ is not touched.
command -v antlr4 >/dev/null || die "antlr4 (the parser generator) is missing: run scripts/setup.sh"
gen=$stage/gen
say "generating the parser from grammar/Attn.g4"
cmake -S "$root" -B "$gen" -G Ninja -DATTN_WITH_LLVM=OFF -DATTN_WITH_TORCH=OFF -DATTN_WITH_CUDA=OFF \
      -DATTN_ANTLR_GENERATED_DIR= > "$stage/gen-configure.log" 2>&1 \
  || { cat "$stage/gen-configure.log" >&2; die "configuring $gen failed"; }
mapfile -t gen_outputs < <(ninja -C "$gen" -t targets all | grep -E '^generated/grammar/[^:]+\.(h|cpp): ' | cut -d: -f1 | sort -u)
[ "${#gen_outputs[@]}" -gt 0 ] || die "the build has no generated/grammar/ outputs (did CMakeLists.txt change?)"
ninja -C "$gen" "${gen_outputs[@]}" > "$stage/gen-build.log" 2>&1 \
  || { cat "$stage/gen-build.log" >&2; die "running antlr4 failed"; }
mkdir -p "$new/grammar"
for f in "${gen_outputs[@]}"; do cp "$gen/$f" "$new/grammar/"; done

# --- 4. manifest, swap in, report --------------------------------------------------------------
{
  echo "attn gpu-bundle, made by scripts/gpu/prepare_bundle.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "dev machine: $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1), $(g++ --version | head -1)"
  echo "grammar_sha256 $(sha256sum grammar/Attn.g4 | cut -d' ' -f1)"
  echo "antlr4_tool $(dpkg-query -W -f='${Version}' antlr4 2>/dev/null || echo '?')"
  for p in "${packages[@]}"; do echo "package $p ${version[$p]}"; done
  echo "files:"
  (cd "$new" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
} > "$new/MANIFEST.txt"

rm -rf "$bundle"
mv "$new" "$bundle"
chmod -R u+rwX,go+rX "$bundle"

size_kb=$(du -sk "$bundle" | cut -f1)
say "wrote $bundle: $(du -sh "$bundle" | cut -f1) in $(find "$bundle" -type f | wc -l) files"
du -sh "$bundle"/usr/include "$bundle"/usr/lib "$bundle"/usr/share "$bundle"/grammar "$bundle"/licenses | sed 's/^/  /'
if [ "$size_kb" -gt $((32 * 1024)) ]; then
  die "the bundle is over 32 MiB: the device tool carries 64 MiB in all (working tree included)"
fi
say "carry it with the device tool: carry: [\"gpu-bundle\"]; then: bash scripts/gpu/build.sh"
