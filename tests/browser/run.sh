#!/usr/bin/env bash
# The browser test: an index of the committed fixture images, the server on
# a free loopback port, and search_page.mjs driving headless Chromium.
# usage: tests/browser/run.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-target/debug/ash-search}")
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 - "$work/config.json" <<'PY'
import json, sys
c = json.load(open("schemas/examples/index.json"))
c["hash"]["encoder"] = "plugin/models/ash-synfundus-48"
json.dump(c, open(sys.argv[1], "w"))
PY
"$bin" init "$work/index" --schema "$work/config.json" >/dev/null
"$bin" ingest "$work/index" tests/fixtures/ingest/records.jsonl --quiet --errors /dev/null 2>/dev/null || true
"$bin" serve "$work/index" --addr 127.0.0.1:0 --image-root tests/fixtures/ingest/images >"$work/out" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done
line=$(head -1 "$work/out")
base=${line#listening on }
mkdir -p target
node tests/browser/search_page.mjs "$base" tests/fixtures/ingest/images/case-08.png target/browser-test.png
