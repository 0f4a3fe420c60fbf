#!/usr/bin/env bash
# Trains the results table (ASH, no attention, DPSH at 12/24/36/48 bits),
# evaluates every run on 1,000 fresh queries, and exports the four ASH
# models as encoder plugins under models/. Run from plugin/:
#   ../.cache/venv-plugin/bin/python -m ... is what it calls.
set -euo pipefail
cd "$(dirname "$0")/.."
py=../.cache/venv-plugin/bin/python
for bits in 48 36 24 12; do
  for variant in ash noatt dpsh; do
    echo "== $variant-$bits"
    $py -m ash.train --config "configs/$variant-$bits.json"
  done
done
$py -m ash.evaluate runs/ash-{12,24,36,48} runs/noatt-{12,24,36,48} runs/dpsh-{12,24,36,48} --out results | tee results/table.md
for bits in 12 24 36 48; do
  $py -m ash.export "runs/ash-$bits" --name "ash-synfundus-$bits" --out models
done
for bits in 12 24 36 48; do
  $py -m ash.card "models/ash-synfundus-$bits" results/table.md
done
