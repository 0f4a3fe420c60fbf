"""Evaluation: ``python -m ash.evaluate RUN [RUN ...] --out DIR``.

Each run's best model encodes a database (its training set) and a query set
rendered with a different seed; every query ranks the whole database. Writes
``metrics.json`` per run, the precision-recall curves (``pr_curve.png``),
attention maps over a few queries (``attention.png``) and prints a Markdown
table, the last lines of the output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .metrics import KS, evaluate
from .train import encode, load, synthetic_arrays, to_tensor


def attention_overlay(model: torch.nn.Module, images: np.ndarray, path: Path) -> None:
    """Query images beside their attention maps (red = attended)."""
    with torch.no_grad():
        _, att = model(to_tensor(images))
    tiles = []
    for img, a in zip(images, att[:, 0].numpy(), strict=True):
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
        heat = Image.fromarray((a * 255).astype(np.uint8)).resize(img.shape[:2][::-1], Image.Resampling.BILINEAR)
        h = np.asarray(heat, dtype=np.float32)[..., None] / 255
        overlay = (img * (1 - 0.6 * h) + np.array([255, 0, 0]) * 0.6 * h).astype(np.uint8)
        tiles.append(np.concatenate([img, overlay], axis=1))
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)


def pr_plot(curves: dict[str, list[tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, curve in curves.items():
        r, p = zip(*curve, strict=True)
        ax.plot(r, p, marker=".", label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Hamming radius 0..K")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--query-seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for run in args.runs:
        cfg, model = load(run)
        x_db, y_db = synthetic_arrays(cfg.train_n, cfg.data_seed, cfg.net.input_size, Path("../.cache/plugin-data"))
        x_q, y_q = synthetic_arrays(args.queries, args.query_seed, cfg.net.input_size, Path("../.cache/plugin-data"))
        r = evaluate(encode(model, x_q), y_q, encode(model, x_db), y_db)
        (run / "metrics.json").write_text(json.dumps(r.as_dict(), indent=1))
        name = f"{cfg.net.backbone}{'' if cfg.net.attention else '-noatt'}-{cfg.loss}-{cfg.net.bits}"
        curves[name] = r.pr_curve
        rows.append((name, cfg.net.bits, r))
        if cfg.net.attention:
            attention_overlay(model, x_q[:6], run / "attention.png")
    pr_plot(curves, args.out / "pr_curve.png")
    head = (
        "| run | bits | MAP | "
        + " | ".join(f"AP@{k}" for k in KS)
        + " | "
        + " | ".join(f"P@{k}" for k in KS)
        + " | P(r≤2) |"
    )
    print(head)
    print("|" + "---|" * (4 + 2 * len(KS)))
    for name, bits, r in rows:
        cells = (
            [f"{r.map:.3f}"]
            + [f"{r.ap_at[k]:.3f}" for k in KS]
            + [f"{r.p_at[k]:.3f}" for k in KS]
            + [f"{r.p_radius2:.3f}"]
        )
        print(f"| {name} | {bits} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
