#!/usr/bin/env bash
# Screenshots of the search page with an encoder's attention maps: an index
# of 300 synthetic photographs (512 px), served on loopback, queried with a
# fresh photograph of each grade 1-4. Writes
# plugin/results/attention-page-<model>-grade<g>.png.
# usage (from the repository root, after `make build` and
# `make tests/browser/node_modules/.ready`): plugin/scripts/attention_screenshots.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-plugin/models/ash-effnet-48}
name=$(basename "$model")
bin=target/release/ash-search
py=.cache/venv-plugin/bin/python
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$py" scripts/demo_images.py 300 "$work/data" 512
"$py" -c 'import json, sys; c = json.load(open(sys.argv[1])); c["hash"]["encoder"] = sys.argv[2]; json.dump(c, open(sys.argv[3], "w"))' \
  schemas/examples/index.json "$model" "$work/index.json"
$bin init "$work/index" --schema "$work/index.json" >/dev/null
$bin ingest "$work/index" "$work/data/records.jsonl" --quiet
$bin serve "$work/index" --addr 127.0.0.1:0 --image-root "$work/data/images" >"$work/out" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$work/out")
for g in 1 2 3 4; do
  node tests/browser/screenshot.mjs "$base" "$work/data/queries/grade$g.png" "plugin/results/attention-page-$name-grade$g.png"
done
echo "plugin/results/attention-page-$name-grade{1..4}.png"
