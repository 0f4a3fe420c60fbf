"""Scoring a shipped model through the product: ``python -m ash.product_eval MODEL_DIR``.

The evaluation photographs (``db``, ``query``, ``revisit`` of
:data:`ash.features.SPLITS`, rendered at 512 px by ``python -m ash.features
--png DIR``) are encoded through the product's Python module,
``ash_search.Encoder`` (``make python-install``), exactly as ingestion
would encode them: the product's decoder, resize, normalisation and ONNX
Runtime. The codes are scored by :func:`ash.headeval.code_metrics`, the
function that scores PyTorch's codes, so the two numbers differ only by what
the product does differently. The ``db`` codes are also indexed
(``ash_search.Index``) and the revisits searched there in one
``Index.search_many`` batch: ``index_same_eye@10`` is the same measure as
``same_eye@10`` taken through the index: numpy counts a tie at the 10th
distance by its expected share, the index breaks it by its document order
(the db is ingested in a random order, so that order is a random draw).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import features
from .headeval import code_metrics

PNG_DIR = features.DEFAULT_CACHE / "eval-png"


def _ash_search():  # noqa: ANN202 - the module, imported where it is needed
    try:
        import ash_search
    except ImportError as e:
        raise SystemExit("the ash_search module is missing from this venv: run `make python-install`") from e
    return ash_search


def encode(encoder: Any, files: list[Path]) -> tuple[np.ndarray, float]:
    """Codes (n, bits) of ``files`` in order by ``encoder`` (an
    ``ash_search.Encoder``), as 0/1, and images/s."""
    started = time.perf_counter()
    packed = encoder.encode(files, batch=32)
    speed = len(files) / (time.perf_counter() - started)
    codes = np.unpackbits(packed, axis=1)[:, : encoder.bits]
    return codes.astype(np.uint8), speed


def index_same_eye(db_codes: np.ndarray, revisit_codes: np.ndarray, k: int = 10) -> float:
    """Share of revisits whose own eye's earlier photograph (db row i for
    revisit i) is among its k nearest in an index of the db codes."""
    ash_search = _ash_search()
    bits = db_codes.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        schema = {"fields": [{"name": "id", "type": "keyword", "stored": True}], "hash": {"name": "code", "bits": bits}}
        index = ash_search.Index.create(Path(tmp) / "db", schema)
        packed = np.packbits(db_codes, axis=1)
        # In a random order: the index breaks ties by document order, and
        # the targets are the first rows.
        order = np.random.default_rng(0).permutation(len(packed))
        index.ingest(({"id": f"{i:06d}", "code": packed[i]} for i in order), commit_every=len(packed))
        ids, _ = index.search_many(np.packbits(revisit_codes, axis=1), k=k)
    return float(np.mean([f"{i:06d}" in row for i, row in enumerate(ids)]))


def split_files(png_dir: Path, name: str) -> tuple[list[Path], np.ndarray]:
    with open(png_dir / f"{name}.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [png_dir / r["path"] for r in rows], np.array([int(r["label"]) for r in rows], dtype=np.int64)


def product_metrics(model: Path, png_dir: Path = PNG_DIR) -> dict[str, object]:
    coded = {}
    speeds = []
    encoder = _ash_search().Encoder.open(model, device="cpu")
    for name in ("db", "query", "revisit"):
        files, labels = split_files(png_dir, name)
        codes, speed = encode(encoder, files)
        coded[name] = (codes, labels)
        speeds.append((len(files), speed))
    metrics = code_metrics(coded["query"][0], coded["query"][1], coded["db"][0], coded["db"][1], coded["revisit"][0])
    metrics["index_same_eye@10"] = index_same_eye(coded["db"][0], coded["revisit"][0])
    n = sum(k for k, _ in speeds)
    metrics["encode_images_per_s"] = n / sum(k / s for k, s in speeds)
    metrics["photograph_px"] = features.RENDER_SIZE
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.product_eval", description=__doc__.split("\n")[0])
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--png", type=Path, default=PNG_DIR)
    args = p.parse_args(argv)
    for model in args.models:
        result = product_metrics(model, args.png)
        (model / "product_metrics.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({"model": str(model), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
