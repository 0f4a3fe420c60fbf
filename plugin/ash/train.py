"""Training: ``python -m ash.train --config configs/ash-48.json``.

A run renders (or loads) its data, trains with Adam on all in-batch pairs
(re-drawn every epoch by reshuffling), evaluates MAP on a validation split
after every epoch against the training set as database, and keeps the
checkpoint with the best validation MAP (not the lowest training loss).
Everything is seeded. Outputs go to the run's ``out`` folder:
``best.pt``, ``config.json``, ``history.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import synthetic
from .losses import ash_pairwise_loss, dpsh_loss
from .metrics import evaluate
from .models import HashNet, NetConfig, codes

LOSSES = ("ash", "ash-authors", "dpsh")


@dataclass
class TrainConfig:
    net: NetConfig = field(default_factory=NetConfig)
    loss: str = "ash"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    train_n: int = 8000
    val_n: int = 500
    seed: int = 0
    data_seed: int = 1
    out: str = "runs/ash-48"
    threads: int = 2

    @staticmethod
    def from_json(text: str) -> TrainConfig:
        raw = json.loads(text)
        net = NetConfig(**raw.pop("net", {}))
        cfg = TrainConfig(net=net, **raw)
        if cfg.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
        return cfg


def synthetic_arrays(n: int, seed: int, size: int, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic fundus images (n, size, size, 3) uint8 and grades, cached as .npz."""
    path = cache / f"synfundus-n{n}-s{seed}-px{size}.npz" if cache else None
    if path and path.exists():
        with np.load(path) as z:
            return z["images"], z["labels"]
    items = synthetic.dataset(n, seed)
    images = np.stack(
        [np.asarray(synthetic.fundus(g, s, size=size)) for g, s in tqdm(items, desc=f"render {n}", leave=False)]
    )
    labels = np.array([g for g, _ in items], dtype=np.int64)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, images=images, labels=labels)
    return images, labels


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) uint8 → (n, 3, H, W) float32 in 0..255 (the manifest's input)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()


@torch.no_grad()
def encode(model: HashNet, images: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [codes(model(to_tensor(images[i : i + batch]))[0]).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.bits), np.uint8)


def loss_fn(cfg: TrainConfig, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if cfg.loss == "dpsh":
        return dpsh_loss(h, y)
    return ash_pairwise_loss(h, y, form="authors" if cfg.loss == "ash-authors" else "consistent")


def train(cfg: TrainConfig, cache: Path | None = Path("../.cache/plugin-data")) -> dict[str, object]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    x_train, y_train = synthetic_arrays(cfg.train_n, cfg.data_seed, cfg.net.input_size, cache)
    x_val, y_val = synthetic_arrays(cfg.val_n, cfg.data_seed + 1000, cfg.net.input_size, cache)
    model = HashNet(cfg.net)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    best = -1.0
    started = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        perm = rng.permutation(len(x_train))
        total = 0.0
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for start in bar:
            idx = perm[start : start + cfg.batch_size]
            h, _ = model(to_tensor(x_train[idx]))
            loss = loss_fn(cfg, h, torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
            bar.set_postfix(loss=f"{float(loss):.4f}")
        val = evaluate(encode(model, x_val), y_val, encode(model, x_train), y_train).map
        history.append(
            {"epoch": epoch + 1, "loss": total / len(perm), "val_map": val, "seconds": time.time() - started}
        )
        print(f"epoch {epoch + 1}: loss {total / len(perm):.4f} val MAP {val:.4f}", flush=True)
        if val > best:
            best = val
            torch.save(model.state_dict(), out / "best.pt")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    (out / "history.json").write_text(json.dumps(history, indent=1))
    return {"best_val_map": best, "history": history}


def load(run: Path) -> tuple[TrainConfig, HashNet]:
    """A trained run's config and its best model."""
    cfg = TrainConfig.from_json((run / "config.json").read_text())
    model = HashNet(cfg.net)
    model.load_state_dict(torch.load(run / "best.pt", weights_only=True))
    model.eval()
    return cfg, model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.train", description="Train an ASH hashing network.")
    p.add_argument("--config", type=Path, required=True, help="a TrainConfig as JSON")
    p.add_argument("--out", help="override the config's output folder")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_json(args.config.read_text())
    if args.out:
        cfg.out = args.out
    result = train(cfg)
    print(json.dumps({"best_val_map": result["best_val_map"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
