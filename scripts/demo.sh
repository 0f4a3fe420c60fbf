#!/usr/bin/env bash
# The demo: the furthest ash-search goes today, on a generated default.
# Builds an exact MIH table over 200,000 clustered 48-bit codes (the ASH
# code length) and answers k-NN and radius queries, printing tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ash-search
out=demo-output
mkdir -p "$out"

echo "== 200,000 clustered 48-bit codes (500 centres, 6% bit noise) and 3 fresh queries"
$bin codes generate --n 200000 --bits 48 --centres 500 --flip 0.06 --seed 11 --output "$out/codes.npy"
$bin codes generate --n 3 --bits 48 --centres 500 --flip 0.06 --seed 12 --output "$out/queries.npy"

echo
echo "== build the multi-index-hashing table"
$bin codes build --input "$out/codes.npy" --output "$out/codes.mih"
$bin codes verify --index "$out/codes.mih"

echo
echo "== exact 5 nearest neighbours of each query (ties broken by id)"
$bin codes knn --index "$out/codes.mih" --queries "$out/queries.npy" -k 5

echo
echo "== every code within Hamming distance 3 of each query"
$bin codes range --index "$out/codes.mih" --queries "$out/queries.npy" --radius 3
