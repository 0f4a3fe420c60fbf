"""Writes ``MODEL_CARD.md`` for an exported plugin: ``python -m ash.card MODEL_DIR RESULTS_TABLE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CARD = """# {name}

**Trained on synthetic images; a demonstration, not a medical device.** Its codes
say nothing reliable about real patients.

- **What it is:** an ASH (Attention-based Saliency Hashing, Fang et al., BIBM 2020)
  encoder: {architecture}; {bits}-bit codes (bit = 1 when the output is >= 0,
  packed in numpy `packbits` order).
- **Input:** `{input_name}`, NCHW float32 RGB, {size}x{size}, pixel values 0..255
  (resize bilinearly, no normalisation; the network scales internally).
- **Outputs:** `hash` (N, {bits}) real values in [-1, 1] before the sign;
  `attention` (N, 1, h, w) the spatial-attention map in [0, 1].
- **Training data:** {training_data}: five diabetic-retinopathy-like grades that
  differ only by small lesions (`ash.synthetic`), with eye, rotation, illumination,
  colour cast, blur, vessel layout and field of view varying independently of grade.
  Adam, lr 1e-3, batch 32 (all in-batch pairs), 10 epochs; the checkpoint with the
  best validation MAP was kept.
- **ONNX Runtime vs PyTorch:** max |difference| {parity:.1e} on the test vectors.

## Retrieval on 1,000 fresh synthetic queries (database: the 8,000 training images)

This model: MAP {map:.3f}, P@10 {p10:.3f}, P(r<=2) {pr2:.3f}.

All runs (ASH = with attention; noatt = the same network without it; DPSH = the
DPSH loss), reproduced by `bash plugin/scripts/train_all.sh`:

{table}
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.card")
    p.add_argument("model", type=Path)
    p.add_argument("table", type=Path)
    args = p.parse_args(argv)
    m = json.loads((args.model / "manifest.json").read_text())
    metrics = m.get("metrics", {})
    text = CARD.format(
        name=m["name"],
        architecture=m.get("architecture", "?"),
        bits=m["bits"],
        input_name=m["input"]["name"],
        size=m["input"]["size"][0],
        training_data=m.get("training_data", "?"),
        parity=m.get("onnx_parity_max_abs_diff", float("nan")),
        map=metrics.get("map", float("nan")),
        p10=metrics.get("p@10", float("nan")),
        pr2=metrics.get("p(r<=2)", float("nan")),
        table=args.table.read_text().strip(),
    )
    (args.model / "MODEL_CARD.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
