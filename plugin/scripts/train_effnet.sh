#!/usr/bin/env bash
# The EfficientNet-Lite0 models: the backbone runs once over every
# photograph (features cached under ../.cache/plugin-data, ~15-25 minutes on
# two cores the first time, reused afterwards), then each head trains on
# the cached maps in minutes. Trains the experiment table (attention on/off,
# the loss and its within-grade margins, seeds, 48 and 12 bits: 12 runs,
# ~1 hour on two cores), scores every run on
# the test splits, exports the chosen models and scores them again through
# the release binary (`ash-search encode`). Run from plugin/ after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
py=../.cache/venv-plugin/bin/python
$py -m ash.features --png ../.cache/plugin-data/eval-png
runs=()
for spec in effnet-48:0 effnet-48:1 effnet-noatt-48:0 effnet-spread17-48:0 effnet-spread17-48:1 \
  effnet-spread17-noatt-48:0 effnet-spread17-noatt-48:1 effnet-spread25w60-48:0 effnet-spread34-48:0 \
  effnet-classpair-48:0 effnet-12:0 effnet-noatt-12:0; do
  cfg=${spec%:*}
  seed=${spec#*:}
  run="runs/$cfg-s$seed"
  if [ ! -f "$run/test_metrics.json" ]; then
    $py -m ash.headtrain --config "configs/$cfg.json" --seed "$seed" --out "$run" --threads 1
    $py -m ash.headeval "$run"
  fi
  runs+=("$run")
done
$py -m ash.headeval --table "${runs[@]}" > results/effnet-table.md
for bits in 48 12; do
  $py -m ash.export "runs/effnet-$bits-s0" --name "ash-effnet-$bits" --out models
  $py -m ash.product_eval "models/ash-effnet-$bits"
  $py -m ash.card "models/ash-effnet-$bits" results/effnet-table.md
done
