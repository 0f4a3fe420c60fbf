"""Writes ``MODEL_CARD.md`` for an exported plugin: ``python -m ash.card MODEL_DIR RESULTS_TABLE``.

Models trained on cached backbone features (``ash.headtrain``; their
manifest carries ImageNet normalisation) get a card with the PyTorch and
product-path numbers side by side (``product_metrics.json`` from
``ash.product_eval``) and the findings in ``results/effnet-findings.md``.
"""

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


EFFNET_CARD = """# {name}

**Trained on synthetic images; a demonstration, not a medical device.** Its codes
say nothing reliable about real patients.

- **What it is:** an ASH (Attention-based Saliency Hashing, Fang et al., BIBM 2020)
  encoder: {architecture}; {bits}-bit codes (bit = 1 when the output is >= 0,
  packed in numpy `packbits` order). {size_mb:.1f} MB.
- **Input:** `{input_name}`, NCHW float32 RGB, {size}x{size}: the photograph resized
  bilinearly (antialiased), then `(pixel / 255 - mean) / std` with the ImageNet mean
  and std, which is what the backbone was trained with.
- **Outputs:** `hash` (N, {bits}) real values in [-1, 1] before the sign;
  `attention` (N, 1, {side}, {side}): {attention_map}.
- **Training:** {training_data}. The trunk is frozen: its stride-32 maps were computed
  once per photograph (`python -m ash.features`) and only the head trained on them
  (`python -m ash.headtrain`, AdamW 1e-3 with a cosine schedule, batches of 24 eyes
  at two visits and 48 other photographs, the loss named above:
  `ash.losses.graded_eye_loss`).
- **ONNX Runtime vs PyTorch:** max |difference| {parity:.1e} on the test vectors.

## Test results

Fresh seeds, never trained on nor used to choose a checkpoint: 500 query photographs
rank a database of 4,000; the first 500 database eyes photographed again at a later
visit (new rotation, illumination, colour cast, blur, field of view) give the same-eye
measure. "PyTorch" scores the head on the cached features; "product" renders the same
photographs at {photo_px} px as PNG files and encodes them with `ash-search encode`
(decoder, resize, normalisation and ONNX Runtime of the release binary), scored by the
same function.

| measure | PyTorch | product |
|---|---|---|
{rows}

{findings}

## All runs

Reproduced by `bash plugin/scripts/train_effnet.sh` (from `plugin/`):

{table}
"""


def _fmt(v: object) -> str:
    if isinstance(v, dict):
        return "/".join(_fmt(x) for x in v.values())
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def effnet_card(model: Path, table: str, findings: str) -> str:
    m = json.loads((model / "manifest.json").read_text())
    torch_metrics = m.get("metrics", {})
    product_path = model / "product_metrics.json"
    product = json.loads(product_path.read_text()) if product_path.exists() else {}
    measures = [
        ("MAP", "map"),
        ("MAP per grade 0/1/2/3/4", "map_per_grade"),
        ("P@10", "p@10"),
        ("distinct codes of 4,000", "distinct"),
        ("bit entropy (1 is best)", "bit_entropy"),
        ("code entropy, bits (log2 4000 = 12.0)", "code_entropy"),
        ("same eye in top 10", "same_eye@10"),
        ("queries whose first 10 results are all tied", "tied_first_pages"),
        ("images/s through `ash-search encode` (2 cores)", "encode_images_per_s"),
    ]
    rows = [
        f"| {label} | {_fmt(torch_metrics.get(key, '—'))} | {_fmt(product.get(key, '—'))} |" for label, key in measures
    ]
    if "encode_images_per_s" in product:
        rows[-1] = f"| {measures[-1][0]} | — | {product['encode_images_per_s']:.0f} |"
    side = m["input"]["size"][0] // 32
    return EFFNET_CARD.format(
        name=m["name"],
        architecture=m.get("architecture", "?"),
        bits=m["bits"],
        size_mb=(model / "model.onnx").stat().st_size / 2**20,
        input_name=m["input"]["name"],
        size=m["input"]["size"][0],
        side=side,
        attention_map=m.get("attention_map", "the attention map"),
        training_data=m.get("training_data", "?"),
        parity=m.get("onnx_parity_max_abs_diff", float("nan")),
        photo_px=product.get("photograph_px", "?"),
        rows="\n".join(rows),
        findings=findings.strip(),
        table=table.strip(),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.card")
    p.add_argument("model", type=Path)
    p.add_argument("table", type=Path)
    args = p.parse_args(argv)
    m = json.loads((args.model / "manifest.json").read_text())
    if "attention_map" in m:
        findings = args.table.parent / "effnet-findings.md"
        text = effnet_card(args.model, args.table.read_text(), findings.read_text() if findings.exists() else "")
        (args.model / "MODEL_CARD.md").write_text(text)
        return 0
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
