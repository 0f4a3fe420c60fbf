#!/usr/bin/env bash
# The crate graph is the architecture: each library crate's normal
# dependency tree must not contain what its layer must not know.
# usage: scripts/check_crate_deps.sh   (exits 1 naming each violation)
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
check() {
  local crate=$1; shift
  local tree
  if ! tree=$(cargo tree --locked -p "$crate" -e normal --prefix none 2>&1); then
    echo "$crate: cargo tree failed: $tree" >&2
    status=1
    return
  fi
  local bad=0
  for banned in "$@"; do
    if grep -qE "^$banned v" <<<"$tree"; then
      echo "$crate must not depend on $banned; it does:" >&2
      cargo tree --locked -p "$crate" -e normal -i "$banned" >&2 || true
      bad=1
    fi
  done
  if [ $bad = 0 ]; then echo "$crate: none of $*"; else status=1; fi
}
# Codes and the MIH engine: no HTTP, ONNX, images, tantivy, schemas or CLI.
check ash-mih axum tokio hyper ort image tantivy jsonschema clap
# The tantivy field: no encoder, no HTTP, no async runtime, no images.
check ash-tantivy ort ash-encoder ash-image axum hyper tokio image jsonschema clap
# Images from outside: no ONNX, no search engine, no codes, no HTTP.
check ash-image ort ash-encoder ash-mih tantivy ash-tantivy axum hyper tokio jsonschema clap
# The encoder: no search engine, no HTTP, no async runtime.
check ash-encoder tantivy ash-tantivy axum hyper tokio clap
exit $status
