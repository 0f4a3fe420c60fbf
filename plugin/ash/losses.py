"""Pairwise hashing losses, over all pairs of a batch.

ASH (DSH-style contrastive), with y = 1 for pairs of different classes and
d = mean over the K outputs of (h1 − h2)²:

    L = mean[½(1 − y)·d] + mean[½·y·max(0, margin − d)]
        + α·(mean|(|h1| − 1)| + mean|(|h2| − 1)|)

* ``form="consistent"`` (default): margin = 2·m, in the same per-bit units
  as d (d ∈ [0, 4] for outputs in [−1, 1]); with m = 0.5 a dissimilar pair
  is pushed until about a quarter of its bits differ.
* ``form="authors"``: margin = m·K as in the authors' code. With d averaged
  over bits, dissimilar pairs can never reach that margin once K ≥ 8, so the
  term never switches off; kept behind this flag for comparison.

DPSH (Li et al., 2016), with S = 1 for same-class pairs and Θ = ½·uᵀv:

    L = mean[log(1 + e^Θ) − S·Θ] + η·mean‖u − sign u‖²
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def _pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = labels.shape[0]
    i, j = torch.triu_indices(n, n, offset=1)
    return i, j, (labels[i] != labels[j]).float()


def ash_pairwise_loss(
    h: torch.Tensor, labels: torch.Tensor, m: float = 0.5, alpha: float = 0.01, form: str = "consistent"
) -> torch.Tensor:
    if form not in ("consistent", "authors"):
        raise ValueError(f"form must be 'consistent' or 'authors', got {form!r}")
    i, j, y = _pairs(labels)
    if len(i) == 0:
        return h.sum() * 0.0
    d = ((h[i] - h[j]) ** 2).mean(dim=1)
    margin = 2 * m if form == "consistent" else m * h.shape[1]
    contrastive = (0.5 * (1 - y) * d).mean() + (0.5 * y * F.relu(margin - d)).mean()
    quant = (h[i].abs() - 1).abs().mean() + (h[j].abs() - 1).abs().mean()
    return contrastive + alpha * quant


def dpsh_loss(u: torch.Tensor, labels: torch.Tensor, eta: float = 0.1) -> torch.Tensor:
    i, j, y = _pairs(labels)
    if len(i) == 0:
        return u.sum() * 0.0
    s = 1 - y
    theta = 0.5 * (u[i] * u[j]).sum(dim=1)
    likelihood = (F.softplus(theta) - s * theta).mean()
    return likelihood + eta * ((u - torch.sign(u)) ** 2).sum(dim=1).mean()


def graded_eye_loss(
    h: torch.Tensor,
    grades: torch.Tensor,
    eyes: torch.Tensor,
    margin: float = 1.0,
    within: float = 0.5,
    spread: float = 0.17,
    alpha: float = 0.01,
    beta: float = 0.1,
) -> torch.Tensor:
    """The class-pairwise ASH loss with structure inside a grade.

    With d = mean over bits of (h1 − h2)² (a differing saturated bit adds
    4/K): different grades are pushed beyond ``margin`` (1.0 ≈ a quarter of
    the bits); the same grade is pulled only inside ``within`` (0.5 ≈ an
    eighth) and two different eyes of a grade are kept ``spread`` apart
    (0.17 ≈ two bits at 48), so a grade is a cluster of distinct codes
    rather than one code; two photographs of the same eye are pulled
    together. Each pair kind is averaged on its own so the many
    different-grade pairs do not drown the rest. Quantisation (α) and bit
    balance (β: each bit's batch mean near 0) complete it.
    """
    n = h.shape[0]
    i, j = torch.triu_indices(n, n, offset=1)
    d = ((h[i] - h[j]) ** 2).mean(dim=1)
    same_grade = grades[i] == grades[j]
    same_eye = eyes[i] == eyes[j]
    terms = []
    for mask, penalty in (
        (~same_grade, F.relu(margin - d)),
        (same_grade & ~same_eye, F.relu(d - within) + F.relu(spread - d)),
        (same_eye, d),
    ):
        if mask.any():
            terms.append(0.5 * penalty[mask].mean())
    quant = (h.abs() - 1).abs().mean()
    balance = (h.mean(dim=0) ** 2).mean()
    return sum(terms, h.sum() * 0.0) + alpha * quant + beta * balance
