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


def average_precisions(
    q_codes: np.ndarray, q_labels: np.ndarray, db_codes: np.ndarray, db_labels: np.ndarray
) -> np.ndarray:
    """Each query's average precision over the whole ranking (ties in database order)."""
    dist = hamming(q_codes, db_codes)
    order = np.argsort(dist, axis=1, kind="stable")
    rel = (db_labels[order] == q_labels[:, None]).astype(np.float64)
    prec = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    n_rel = rel.sum(axis=1)
    return np.where(n_rel > 0, (prec * rel).sum(axis=1) / np.maximum(n_rel, 1), 0.0)


def per_label_map(
    q_codes: np.ndarray, q_labels: np.ndarray, db_codes: np.ndarray, db_labels: np.ndarray
) -> dict[int, float]:
    """MAP over the queries of each label."""
    ap = average_precisions(q_codes, q_labels, db_codes, db_labels)
    return {int(g): float(ap[q_labels == g].mean()) for g in np.unique(q_labels)}


def code_statistics(codes: np.ndarray) -> dict[str, float]:
    """How much of the code space a model uses.

    * distinct — different codes among the items;
    * bit_balance — mean over bits of |share of ones − ½| (0 is balanced);
    * bit_entropy — mean over bits of the entropy of that bit, in bits (1 is best);
    * code_entropy — entropy of the codes' empirical distribution, in bits
      (log2 of the item count at most).
    """
    ones = codes.mean(axis=0)
    p = np.clip(ones, 1e-12, 1 - 1e-12)
    bit_entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    _, counts = np.unique(np.packbits(codes, axis=1), axis=0, return_counts=True)
    share = counts / counts.sum()
    return {
        "distinct": len(counts),
        "bit_balance": float(np.abs(ones - 0.5).mean()),
        "bit_entropy": float(bit_entropy.mean()),
        "code_entropy": float(-(share * np.log2(share)).sum()),
    }


def same_item_recall(q_codes: np.ndarray, db_codes: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Expected share of queries whose ``targets[i]`` database item is in their top ``k``.

    Ties at the boundary are in random order: an item tied with t others
    for the s places left is counted s / t.
    """
    dist = hamming(q_codes, db_codes)
    own = dist[np.arange(len(targets)), targets][:, None]
    closer = (dist < own).sum(axis=1)
    tied = (dist == own).sum(axis=1)
    return float(np.mean(np.clip((k - closer) / tied, 0.0, 1.0)))


def tied_pages(q_codes: np.ndarray, db_codes: np.ndarray, k: int = 10) -> float:
    """Share of queries whose first ``k`` results all lie at the same Hamming distance."""
    dist = np.sort(hamming(q_codes, db_codes), axis=1)
    return float(np.mean(dist[:, 0] == dist[:, k - 1]))


def attention_localisation(
    maps: np.ndarray, masks: np.ndarray, labels: np.ndarray, top: float = 0.05, tolerance: int = 8
) -> dict[str, dict[int, float]]:
    """Attention scored against where the lesions are, per label with lesions.

    ``maps`` (n, 1, h, w) are upsampled bilinearly to the masks' size (n, H, W).
    * top5_share — share of lesion pixels inside the map's top ``top`` of
      pixels (chance: ``top``);
    * pointing — share of images whose attention maximum lies within
      ``tolerance`` pixels of a lesion pixel (the pointing game).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    size = masks.shape[1:]
    up = F.interpolate(torch.from_numpy(np.asarray(maps, np.float32)), size=size, mode="bilinear", align_corners=False)
    up = up[:, 0].numpy()
    near = (
        F.max_pool2d(
            torch.from_numpy(masks.astype(np.float32))[:, None], 2 * tolerance + 1, stride=1, padding=tolerance
        )[:, 0].numpy()
        > 0
    )
    share: dict[int, list[float]] = {}
    point: dict[int, list[float]] = {}
    for a, m, g, n in zip(up, masks, labels, near, strict=True):
        if not m.any():
            continue
        cut = np.quantile(a, 1 - top)
        share.setdefault(int(g), []).append(float((m & (a >= cut)).sum() / m.sum()))
        point.setdefault(int(g), []).append(float(n.reshape(-1)[int(np.argmax(a))]))
    return {
        "top5_share": {g: float(np.mean(v)) for g, v in sorted(share.items())},
        "pointing": {g: float(np.mean(v)) for g, v in sorted(point.items())},
    }
