#!/usr/bin/env bash
# The demo: the furthest ash-search goes today, on an embedded default.
#  1. an index of 5,000 clinical records (patient, eye, grade, report, date)
#     with 48-bit codes: image-only, filtered and hybrid queries;
#  2. the engine alone: an exact MIH table over 200,000 codes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ash-search
out=demo-output
rm -rf "$out"
mkdir -p "$out"

echo "== 1. an index of 5,000 records with metadata and 48-bit codes"
python3 scripts/demo_records.py 5000 "$out/records.jsonl"
$bin init "$out/index" --schema schemas/examples/index.json
$bin ingest "$out/index" "$out/records.jsonl" --errors "$out/errors.jsonl"
$bin info "$out/index"
query=$(head -1 "$out/records.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["code"])')

echo
echo "== image only: the 5 cases nearest to code $query"
$bin search "$out/index" --code "$query" -k 5
echo
echo "== image + filter: like case-00000, grade 2 or worse, left eye (OS)"
$bin search "$out/index" --like case-00000 --filter 'grade:[2 TO 4] AND eye:OS' -k 5
echo
echo "== hybrid (rrf): like case-00000, report mentions exudates"
$bin search "$out/index" --like case-00000 --text exudates --mode rrf -k 5
echo
echo "== hybrid (weighted 0.7 image / 0.3 text), grade 2 or worse"
$bin search "$out/index" --code "$query" --text 'exudates haemorrhages' --filter 'grade:[2 TO 4]' --mode weighted --weight 0.7 -k 5

echo
echo "== 2. the engine alone: 200,000 clustered 48-bit codes, 3 fresh queries"
$bin codes generate --n 200000 --bits 48 --centres 500 --flip 0.06 --seed 11 --output "$out/codes.npy"
$bin codes generate --n 3 --bits 48 --centres 500 --flip 0.06 --seed 12 --output "$out/queries.npy"
$bin codes build --input "$out/codes.npy" --output "$out/codes.mih"
$bin codes verify --index "$out/codes.mih"
echo "-- exact 5 nearest neighbours (ties broken by id)"
$bin codes knn --index "$out/codes.mih" --queries "$out/queries.npy" -k 5
echo "-- every code within Hamming distance 3"
$bin codes range --index "$out/codes.mih" --queries "$out/queries.npy" --radius 3
