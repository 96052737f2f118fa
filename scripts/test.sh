#!/usr/bin/env bash
# Runs every test (after ./scripts/setup.sh). Extra arguments go to ctest, e.g. -R parser.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
