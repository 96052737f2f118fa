#!/usr/bin/env bash
# The main job on its built-in default (after ./scripts/setup.sh). For now: check every
# program of the standard library, then explain each one (params, mask, the kind of every
# value). Later stages replace this with training and evaluating a model.
set -euo pipefail
cd "$(dirname "$0")/.."
attn=build/bin/attn
echo "== attn check stdlib/*.attn"
"$attn" check stdlib/*.attn
echo "all $(ls stdlib/*.attn | wc -l) stdlib programs are valid"
for f in stdlib/*.attn; do
  echo
  echo "== attn explain $f"
  "$attn" explain "$f"
done
