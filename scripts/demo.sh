#!/usr/bin/env bash
# The demo: the furthest ash-search goes today, on an embedded default.
#  1. 1,000 synthetic fundus photographs of every grade (the encoder plugin's
#     generator) and a real CC0 photograph, with clinical metadata, encoded by
#     the shipped ASH model through ONNX Runtime and indexed in one command;
#     image-only, filtered and hybrid queries with fresh query images;
#  2. the HTTP API: the same index served on loopback, queried with curl
#     (the web page is at the printed address when you run `serve` yourself);
#  3. the engine alone: an exact MIH table over 200,000 codes;
#  4. a PACS (scripts/demo_pacs.sh): photographs as DICOM in an Orthanc on
#     loopback, ingested over DICOMweb (skipped, with the install command,
#     when Orthanc or dcmtk is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ash-search
py=${DEMO_PYTHON:-.cache/venv-demo/bin/python}
n=${DEMO_N:-1000}
# The EfficientNet-Lite0 ASH model on 512-px photographs; DEMO_MODEL=
# plugin/models/ash-synfundus-48 DEMO_SIZE=192 is the fast shallow option.
model=${DEMO_MODEL:-plugin/models/ash-effnet-48}
size=${DEMO_SIZE:-512}
out=demo-output
rm -rf "$out"
mkdir -p "$out"

echo "== 1. $n fundus photographs with metadata → ASH codes → index"
"$py" scripts/demo_images.py "$n" "$out/data" "$size"
# The example index configuration, with the demo's encoder.
"$py" -c 'import json, sys; c = json.load(open(sys.argv[1])); c["hash"]["encoder"] = sys.argv[2]; json.dump(c, open(sys.argv[3], "w"))' \
  schemas/examples/index.json "$model" "$out/index.json"
$bin init "$out/index" --schema "$out/index.json"
$bin ingest "$out/index" "$out/data/records.jsonl" --errors "$out/errors.jsonl" --quiet
$bin info "$out/index"
q=$out/data/queries

echo
echo "== image only: the 5 cases most like a new grade-3 photograph ($q/grade3.png)"
$bin search "$out/index" --image "$q/grade3.png" -k 5
echo
echo "== image only: case-00003's eye photographed again at a later visit (new camera settings); its earlier photograph should lead"
$bin search "$out/index" --image "$q/revisit-case-00003.png" -k 5
echo
echo "== image only: like the real CC0 photograph"
$bin search "$out/index" --image "$out/data/images/retina.jpg" -k 5
echo
echo "== image + filter: like a new grade-2 photograph, grade 2 or worse, left eye (OS)"
$bin search "$out/index" --image "$q/grade2.png" --filter 'grade:[2 TO 4] AND eye:OS' -k 5
echo
echo "== hybrid (rrf): like the grade-2 photograph, report mentions exudates"
$bin search "$out/index" --image "$q/grade2.png" --text exudates --mode rrf -k 5
echo
echo "== hybrid (weighted 0.7 image / 0.3 text), grade 2 or worse, query by an indexed case"
$bin search "$out/index" --like case-00003 --text 'exudates haemorrhages' --filter 'grade:[2 TO 4]' --mode weighted --weight 0.7 -k 5

echo
echo "== 2. the HTTP API over the same index (POST /search with an uploaded image)"
$bin serve "$out/index" --addr 127.0.0.1:0 --image-root "$out/data/images" >"$out/serve.out" 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$out/serve.out" && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$out/serve.out")
curl -s "$base/stats"; echo
curl -s -F image=@"$q/grade3.png" -F k=3 -F filter='grade:[3 TO 4]' -F text=haemorrhages -F mode=rrf "$base/search" |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("query code", r["query"]["code"], "(%.1f ms)" % r["took_ms"]); [print(" ", h["id"], "d=%s" % h["distance"], "grade", h["fields"]["grade"], h["fields"]["eye"], h["fields"]["report"], h.get("thumbnail_url", "")) for h in r["hits"]]'
kill $server
trap - EXIT
echo "-- to browse it: $bin serve $out/index --image-root $out/data/images, then open the address it prints (http://127.0.0.1:8080/?token=…)"

echo
echo "== 3. the engine alone: 200,000 clustered 48-bit codes, 3 fresh queries"
$bin codes generate --n 200000 --bits 48 --centres 500 --flip 0.06 --seed 11 --output "$out/codes.npy"
$bin codes generate --n 3 --bits 48 --centres 500 --flip 0.06 --seed 12 --output "$out/queries.npy"
$bin codes build --input "$out/codes.npy" --output "$out/codes.mih"
$bin codes verify --index "$out/codes.mih"
echo "-- exact 5 nearest neighbours (ties broken by id)"
$bin codes knn --index "$out/codes.mih" --queries "$out/queries.npy" -k 5
echo "-- every code within Hamming distance 3"
$bin codes range --index "$out/codes.mih" --queries "$out/queries.npy" --radius 3

echo
echo "== 4. a PACS: 12 photographs as DICOM in Orthanc, ingested over DICOMweb"
scripts/demo_pacs.sh "$bin" "$py" "$out"
