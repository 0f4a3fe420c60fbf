"""Scoring a shipped model through the product: ``python -m ash.product_eval MODEL_DIR``.

The evaluation photographs (``db``, ``query``, ``revisit`` of
:data:`ash.features.SPLITS`, rendered at 512 px by ``python -m ash.features
--png DIR``) are encoded by the release binary, ``ash-search encode
--json``, exactly as ingestion would encode them: the product's decoder,
resize, normalisation and ONNX Runtime. The codes it prints are scored by
:func:`ash.headeval.code_metrics`, the function that scores PyTorch's codes,
so the two numbers differ only by what the product does differently. The
encoder's own images/s figure (its last stderr line) is kept.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np

from . import features
from .headeval import code_metrics

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "ash-search"
PNG_DIR = features.DEFAULT_CACHE / "eval-png"


def encode(binary: Path, model: Path, files: list[Path], threads: int = 0) -> tuple[np.ndarray, float]:
    """Codes (n, bits) of ``files`` in order, and the encoder's images/s."""
    listing = "\n".join(str(f) for f in files) + "\n"
    proc = subprocess.run(
        [str(binary), "encode", "--encoder", str(model), "--json", "--files-from", "-", "--threads", str(threads)],
        input=listing,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ash-search encode failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    bits = int(rows[0]["bits"])
    codes = np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(r["code"]), np.uint8))[:bits] for r in rows])
    speed = re.findall(r"images_per_s=([0-9.]+)", proc.stderr)
    return codes.astype(np.uint8), float(speed[-1]) if speed else float("nan")


def split_files(png_dir: Path, name: str) -> tuple[list[Path], np.ndarray]:
    with open(png_dir / f"{name}.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [png_dir / r["path"] for r in rows], np.array([int(r["label"]) for r in rows], dtype=np.int64)


def product_metrics(model: Path, binary: Path = BINARY, png_dir: Path = PNG_DIR) -> dict[str, object]:
    coded = {}
    speeds = []
    for name in ("db", "query", "revisit"):
        files, labels = split_files(png_dir, name)
        codes, speed = encode(binary, model, files)
        coded[name] = (codes, labels)
        speeds.append((len(files), speed))
    metrics = code_metrics(coded["query"][0], coded["query"][1], coded["db"][0], coded["db"][1], coded["revisit"][0])
    n = sum(k for k, _ in speeds)
    metrics["encode_images_per_s"] = n / sum(k / s for k, s in speeds)
    metrics["photograph_px"] = features.RENDER_SIZE
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.product_eval", description=__doc__.split("\n")[0])
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--binary", type=Path, default=BINARY)
    p.add_argument("--png", type=Path, default=PNG_DIR)
    args = p.parse_args(argv)
    for model in args.models:
        result = product_metrics(model, args.binary, args.png)
        (model / "product_metrics.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({"model": str(model), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
