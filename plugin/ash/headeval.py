"""Test metrics of a hash head: ``python -m ash.headeval RUN [RUN ...]``.

Everything is measured on splits no run trained or chose a checkpoint on
(:data:`ash.features.SPLITS`): 500 ``query`` photographs rank a 4,000-image
``db``; the ``revisit`` split photographs the first 500 ``db`` eyes again
at a later visit. Reported per run:

* retrieval — MAP, AP@k, P@k and MAP per grade (ties in database order,
  which is random with respect to grade);
* code use — distinct codes in ``db``, bit balance and entropies;
* within a grade — same-eye recall@10 (a revisit's earlier photograph in
  its top 10, ties counted in random order) and the share of queries whose
  whole first page lies at one Hamming distance;
* re-ranking — the same two with the top 100 by Hamming re-ranked by the
  real-valued outputs (what keeping them costs: 4 bytes per bit per image);
* attention — the share of lesion pixels inside the map's top 5 % and the
  pointing game, per grade, against the generator's lesion masks.

:func:`code_metrics` computes the code-only part from any codes, so the
product path (``ash-search encode`` over rendered PNGs,
``scripts/product_eval.py``) is scored by the same function.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import features
from .headtrain import load, outputs
from .metrics import (
    attention_localisation,
    code_statistics,
    evaluate,
    hamming,
    per_label_map,
    same_item_recall,
    tied_pages,
)

RERANK_DEPTH = 100


def code_metrics(
    q_codes: np.ndarray, q_labels: np.ndarray, db_codes: np.ndarray, db_labels: np.ndarray, revisit_codes: np.ndarray
) -> dict[str, object]:
    """Retrieval, code use and within-grade measures from codes alone."""
    retrieval = evaluate(q_codes, q_labels, db_codes, db_labels).as_dict()
    retrieval.pop("pr_curve")
    return {
        **retrieval,
        "map_per_grade": per_label_map(q_codes, q_labels, db_codes, db_labels),
        **code_statistics(db_codes),
        "same_eye@10": same_item_recall(revisit_codes, db_codes, np.arange(len(revisit_codes))),
        "tied_first_pages": tied_pages(q_codes, db_codes),
    }


def rerank(q_out: np.ndarray, db_out: np.ndarray, depth: int = RERANK_DEPTH) -> tuple[np.ndarray, float]:
    """Each query's first ``depth`` by Hamming, re-ordered by squared distance
    of the real outputs; returns (rankings, µs per query for the re-ranking)."""
    dist = hamming((q_out >= 0).astype(np.uint8), (db_out >= 0).astype(np.uint8))
    top = np.argsort(dist, axis=1, kind="stable")[:, :depth]
    started = time.perf_counter()
    real = ((q_out[:, None, :] - db_out[top]) ** 2).sum(axis=2)
    order = np.take_along_axis(top, np.argsort(real, axis=1, kind="stable"), axis=1)
    micros = (time.perf_counter() - started) * 1e6 / len(q_out)
    return order, micros


def reranked_metrics(
    q_out: np.ndarray, q_labels: np.ndarray, db_out: np.ndarray, db_labels: np.ndarray, revisit_out: np.ndarray
) -> dict[str, float]:
    """AP@100 and same-eye recall@10 after re-ranking the top 100 by real outputs."""
    order, micros = rerank(q_out, db_out)
    rel = (db_labels[order] == q_labels[:, None]).astype(np.float64)
    prec = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    hits = rel.sum(axis=1)
    ap100 = float(np.mean(np.where(hits > 0, (prec * rel).sum(axis=1) / np.maximum(hits, 1), 0.0)))
    eye_order, _ = rerank(revisit_out, db_out)
    eye = float(np.mean([i in row[:10] for i, row in enumerate(eye_order)]))
    return {"ap@100": ap100, "same_eye@10": eye, "micros_per_query": micros, "bytes_per_image": 4 * db_out.shape[1]}


def evaluate_run(run: Path, cache: Path = features.DEFAULT_CACHE) -> dict[str, object]:
    cfg, head = load(run)
    split = {n: features.load(features.SPLITS[n], cache) for n in ("db", "query", "revisit")}
    db_out, _ = outputs(head, split["db"].features)
    q_out, q_att = outputs(head, split["query"].features)
    rv_out, _ = outputs(head, split["revisit"].features)
    q_labels, db_labels = split["query"].labels, split["db"].labels
    result: dict[str, object] = {
        "run": str(run),
        "bits": cfg.head.bits,
        **code_metrics(
            (q_out >= 0).astype(np.uint8),
            q_labels,
            (db_out >= 0).astype(np.uint8),
            db_labels,
            (rv_out >= 0).astype(np.uint8),
        ),
        "reranked": reranked_metrics(q_out, q_labels, db_out, db_labels, rv_out),
    }
    masks = split["query"].masks
    if cfg.head.attention and masks is not None:
        result["attention"] = attention_localisation(q_att, masks, q_labels)
    else:
        result["attention"] = "none: this head has no attention (its map is all ones)"
    return result


TABLE_HEAD = (
    "| run | bits | attention | loss (within / spread) | seed | MAP | MAP per grade 0/1/2/3/4 "
    "| distinct of 4,000 | bit entropy | same eye @10 | tied first pages | same eye @10, re-ranked "
    "| lesion share in top 5 % (1/2/3/4) "
    "| pointing game (1/2/3/4) | training |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def table_row(run: Path) -> str:
    """One Markdown row from a run's ``config.json``, ``history.json`` and ``test_metrics.json``."""
    cfg = json.loads((run / "config.json").read_text())
    m = json.loads((run / "test_metrics.json").read_text())
    seconds = json.loads((run / "history.json").read_text())[-1]["seconds"]
    head = cfg["head"]
    grades = "/".join(f"{v:.2f}" for v in m["map_per_grade"].values())
    att = m["attention"]
    share = "—" if isinstance(att, str) else "/".join(f"{v:.2f}" for v in att["top5_share"].values())
    point = "—" if isinstance(att, str) else "/".join(f"{v:.2f}" for v in att["pointing"].values())
    kind = ("block 15 + " if head.get("last_block") else "") + ("ASH" if head["attention"] else "none")
    loss = cfg["loss"]
    if loss == "graded-eye":
        loss += f" ({cfg.get('within', 0.5)} / {cfg.get('spread', 0.17)})"
    return (
        f"| {run.name} | {head['bits']} | {kind} | {loss} | {cfg['seed']} | {m['map']:.3f} | {grades} "
        f"| {m['distinct']} | {m['bit_entropy']:.2f} | {m['same_eye@10']:.2f} | {m['tied_first_pages']:.2f} "
        f"| {m['reranked']['same_eye@10']:.2f} | {share} | {point} | {seconds:.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.headeval", description="Test metrics of trained heads.")
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--cache", type=Path, default=features.DEFAULT_CACHE)
    p.add_argument("--table", action="store_true", help="print a Markdown table of runs already scored")
    args = p.parse_args(argv)
    if args.table:
        print("\n".join([TABLE_HEAD, *(table_row(run) for run in args.runs)]))
        return 0
    for run in args.runs:
        result = evaluate_run(run, args.cache)
        (run / "test_metrics.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
