"""Training a hash head on cached features: ``python -m ash.headtrain --config configs/effnet-48.json``.

The trunk's maps come from :mod:`ash.features` (extracted once). Each batch
holds ``pairs`` training eyes photographed at two visits (the
``train-revisit`` split) and ``singles`` other training photographs, so the
loss (:func:`ash.losses.graded_eye_loss`) sees different grades, different
eyes of one grade and one eye twice. After every epoch the head encodes the
validation split against the training set; the checkpoint kept is the one
with the best validation score (MAP plus a tenth of the same-eye
recall@10), never chosen on the test queries. Outputs in ``out``:
``head.pt``, ``config.json``, ``history.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import features
from .heads import HashHead, HeadConfig
from .losses import ash_pairwise_loss, graded_eye_loss
from .metrics import evaluate, same_item_recall

LOSSES = ("graded-eye", "ash")


@dataclass
class HeadTrainConfig:
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: str = "graded-eye"
    # graded-eye: the same grade pulled inside `within`, two eyes kept
    # `spread` apart (see ash.losses.graded_eye_loss).
    within: float = 0.5
    spread: float = 0.17
    epochs: int = 15
    pairs: int = 24
    singles: int = 48
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    out: str = "runs/effnet-48"
    threads: int = 2

    @staticmethod
    def from_json(text: str) -> HeadTrainConfig:
        raw = json.loads(text)
        cfg = HeadTrainConfig(head=HeadConfig(**raw.pop("head", {})), **raw)
        if cfg.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
        return cfg


@dataclass
class Data:
    """Training features with their visit pairs, and the validation split."""

    train: features.Cached
    train_revisit: features.Cached
    val: features.Cached
    val_revisit: features.Cached

    @staticmethod
    def load(cache: Path = features.DEFAULT_CACHE) -> Data:
        s = features.SPLITS
        return Data(*(features.load(s[n], cache) for n in ("train", "train-revisit", "val", "val-revisit")))


@torch.no_grad()
def outputs(head: HashHead, maps: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Real hash outputs and attention maps for cached feature maps."""
    head.eval()
    hs, atts = [], []
    for i in range(0, len(maps), batch):
        h, a = head(torch.from_numpy(np.asarray(maps[i : i + batch], dtype=np.float32)))
        hs.append(h.numpy())
        atts.append(a.numpy())
    return np.concatenate(hs), np.concatenate(atts)


def codes_of(head: HashHead, maps: np.ndarray) -> np.ndarray:
    return (outputs(head, maps)[0] >= 0).astype(np.uint8)


def _batch(cfg: HeadTrainConfig, data: Data, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature maps, grades and eye ids: ``pairs`` eyes at two visits plus ``singles``."""
    n_pairs = len(data.train_revisit.labels)
    eyes = rng.choice(n_pairs, size=cfg.pairs, replace=False)
    singles = rng.choice(np.arange(n_pairs, len(data.train.labels)), size=cfg.singles, replace=False)
    # Sorted: memory-mapped reads in file order.
    first, again = np.sort(np.concatenate([eyes, singles])), np.sort(eyes)
    maps = np.concatenate([data.train.features[first], data.train_revisit.features[again]])
    ids = np.concatenate([first, again])
    return maps.astype(np.float32), data.train.labels[ids], ids


def validate(head: HashHead, data: Data) -> dict[str, float]:
    db = codes_of(head, data.train.features)
    val = codes_of(head, data.val.features)
    revisit = codes_of(head, data.val_revisit.features)
    val_map = evaluate(val, data.val.labels, db, data.train.labels).map
    eye = same_item_recall(revisit, val, np.arange(len(revisit)))
    return {"val_map": val_map, "val_same_eye@10": eye, "score": val_map + 0.1 * eye}


def train(cfg: HeadTrainConfig, data: Data) -> dict[str, object]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    head = HashHead(cfg.head)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = len(data.train.labels) // (cfg.pairs + cfg.singles)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    best = -1.0
    started = time.time()
    for epoch in range(cfg.epochs):
        head.train()
        total = 0.0
        for _ in range(steps):
            maps, grades, eyes = _batch(cfg, data, rng)
            h, _ = head(torch.from_numpy(maps))
            g = torch.from_numpy(grades)
            loss = (
                ash_pairwise_loss(h, g)
                if cfg.loss == "ash"
                else graded_eye_loss(h, g, torch.from_numpy(eyes), within=cfg.within, spread=cfg.spread)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        scores = validate(head, data)
        history.append({"epoch": epoch + 1, "loss": total / steps, **scores, "seconds": time.time() - started})
        print(json.dumps(history[-1]), flush=True)
        if scores["score"] > best:
            best = scores["score"]
            torch.save(head.state_dict(), out / "head.pt")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    (out / "history.json").write_text(json.dumps(history, indent=1))
    return {"best_score": best, "history": history}


def load(run: Path) -> tuple[HeadTrainConfig, HashHead]:
    """A trained run's config and its best head."""
    cfg = HeadTrainConfig.from_json((run / "config.json").read_text())
    head = HashHead(cfg.head)
    head.load_state_dict(torch.load(run / "head.pt", weights_only=True))
    head.eval()
    return cfg, head


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.headtrain", description="Train a hash head on cached features.")
    p.add_argument("--config", type=Path, required=True, help="a HeadTrainConfig as JSON")
    p.add_argument("--out", help="override the config's output folder")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--threads", type=int, help="override the config's PyTorch threads")
    p.add_argument("--cache", type=Path, default=features.DEFAULT_CACHE)
    args = p.parse_args(argv)
    cfg = HeadTrainConfig.from_json(args.config.read_text())
    if args.threads:
        cfg.threads = args.threads
    if args.out:
        cfg.out = args.out
    if args.seed is not None:
        cfg.seed = args.seed
    result = train(cfg, Data.load(args.cache))
    print(json.dumps({"best_score": result["best_score"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
