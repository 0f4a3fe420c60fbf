"""Retrieval metrics over Hamming rankings.

Each query ranks the whole database by Hamming distance, ties kept in
database order (a stable sort), and a database item is relevant when it has
the query's label.

* MAP — mean over queries of average precision over the whole ranking.
* AP@k — Σ_{i≤k} P@i·rel_i / Σ_{i≤k} rel_i (0 when nothing relevant is in the
  top k), the usual "mAP@k" of the hashing literature.
* P@k — share of relevant items in the top k.
* P(r≤2) — share of relevant items among those within Hamming radius 2
  (0 when none lies within it).
* The precision-recall curve over Hamming radii 0..K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KS = (5, 10, 20, 100)


def hamming(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Distances (nq, nd) between 0/1 code matrices."""
    q = queries.astype(np.int32)
    d = database.astype(np.int32)
    return q.shape[1] - (q @ d.T + (1 - q) @ (1 - d).T)


@dataclass
class Retrieval:
    map: float
    ap_at: dict[int, float]
    p_at: dict[int, float]
    p_radius2: float
    pr_curve: list[tuple[float, float]]  # (recall, precision) at radius 0..K

    def as_dict(self) -> dict[str, object]:
        return {
            "map": self.map,
            **{f"ap@{k}": v for k, v in self.ap_at.items()},
            **{f"p@{k}": v for k, v in self.p_at.items()},
            "p(r<=2)": self.p_radius2,
            "pr_curve": self.pr_curve,
        }


def evaluate(q_codes: np.ndarray, q_labels: np.ndarray, db_codes: np.ndarray, db_labels: np.ndarray) -> Retrieval:
    dist = hamming(q_codes, db_codes)
    order = np.argsort(dist, axis=1, kind="stable")
    rel = (db_labels[order] == q_labels[:, None]).astype(np.float64)
    ranks = np.arange(1, rel.shape[1] + 1)
    cum = np.cumsum(rel, axis=1)
    prec = cum / ranks
    n_rel = rel.sum(axis=1)
    ap = np.where(n_rel > 0, (prec * rel).sum(axis=1) / np.maximum(n_rel, 1), 0.0)
    ap_at, p_at = {}, {}
    for k in KS:
        k_ = min(k, rel.shape[1])
        hits = rel[:, :k_].sum(axis=1)
        ap_at[k] = float(np.mean(np.where(hits > 0, (prec[:, :k_] * rel[:, :k_]).sum(axis=1) / np.maximum(hits, 1), 0)))
        p_at[k] = float(np.mean(hits / k_))
    same = db_labels[None, :] == q_labels[:, None]
    within = dist <= 2
    n_within = within.sum(axis=1)
    p_r2 = np.where(n_within > 0, (within & same).sum(axis=1) / np.maximum(n_within, 1), 0.0)
    curve = []
    total_rel = np.maximum(same.sum(axis=1), 1)
    for r in range(q_codes.shape[1] + 1):
        w = dist <= r
        got = w.sum(axis=1)
        good = (w & same).sum(axis=1)
        precision = float(np.mean(np.where(got > 0, good / np.maximum(got, 1), 0.0)))
        curve.append((float(np.mean(good / total_rel)), precision))
    return Retrieval(float(ap.mean()), ap_at, p_at, float(p_r2.mean()), curve)
