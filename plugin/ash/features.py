"""Backbone features, computed once per image and cached.

Training end to end on two cores is slow because every epoch would run the
backbone over every image. Instead the frozen, ImageNet-pretrained
EfficientNet-Lite0 trunk (stem and blocks 0–14: stride 32, 192 channels)
runs once per image through ONNX Runtime, and its spatial feature map is
kept as float16 in a memory-mapped ``.npy``; what ASH adds (attention,
pooling, hash layer, optionally the last block) trains on those maps in
seconds to minutes.

How a split is made: the generator renders each photograph at
``RENDER_SIZE`` (larger than the model input, as a camera would), the
photograph is resized to ``INPUT_SIZE`` with an antialiased bilinear filter
(what ``ash-search`` does with the manifest's ``"resize": "bilinear"``),
normalised with the ImageNet mean and std (the manifest's ``mean``/``std``),
and the trunk's output stored. Rendering runs in worker processes while ONNX
Runtime runs in this one. A cache file's name holds everything that
determines its contents (backbone, blocks, sizes, split seed, count, visit),
so a run reuses what an earlier one made and never mixes two settings.

``python -m ash.features --splits train,val`` fills the cache;
``--png`` also keeps the rendered photographs, for evaluation through the
product (``ash-search encode``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from . import synthetic

BACKBONE = "efficientnet-lite0"
TRUNK_BLOCKS = 15  # blocks 0..14; block 15 and the 1x1 head may be trained on top
TRUNK_CHANNELS = 192
INPUT_SIZE = 384
RENDER_SIZE = 512
STRIDE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "plugin-data"


@dataclass(frozen=True)
class Split:
    """The first ``n`` of ``synthetic.dataset(of or n, seed)``, photographed at ``visit``."""

    name: str
    n: int
    seed: int
    visit: int = 0
    masks: bool = False
    of: int | None = None

    def items(self) -> list[tuple[int, int]]:
        return synthetic.dataset(self.of or self.n, self.seed)[: self.n]


# Fresh seeds, none shared with the first waves' training (data seeds 1, 1001).
SPLITS = {
    "train": Split("train", 8000, 11),
    # The first 2,000 training eyes at a later visit: pairs for the same-eye term.
    "train-revisit": Split("train-revisit", 2000, 11, visit=1, of=8000),
    "val": Split("val", 1000, 12),
    "val-revisit": Split("val-revisit", 250, 12, visit=1, of=1000),
    "db": Split("db", 4000, 13),
    "query": Split("query", 500, 14, masks=True),
    # The first 500 database eyes photographed again at a later visit.
    "revisit": Split("revisit", 500, 13, visit=1, of=4000),
}


def feature_side(input_size: int = INPUT_SIZE) -> int:
    side = input_size
    for _ in range(5):  # five stride-2 stages
        side = (side + 1) // 2
    return side


def stem(split: Split, input_size: int = INPUT_SIZE, render_size: int = RENDER_SIZE) -> str:
    of = f"-of{split.of}" if split.of else ""
    return (
        f"{BACKBONE}-b{TRUNK_BLOCKS}-in{input_size}-r{render_size}-{split.name}-s{split.seed}-n{split.n}{of}"
        f"-v{split.visit}"
    )


def normalise(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 → (n, 3, H, W) float32, ImageNet mean and std (the manifest's rule)."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std


def photograph(grade: int, scene: int, visit: int, render_size: int) -> Image.Image:
    return synthetic.fundus(grade, scene, size=render_size, visit=visit)


def model_input(photo: Image.Image, input_size: int) -> np.ndarray:
    """The photograph as the model sees it: antialiased bilinear resize, like the product."""
    if photo.size != (input_size, input_size):
        photo = photo.resize((input_size, input_size), Image.Resampling.BILINEAR)
    return np.asarray(photo, dtype=np.uint8)


def _render_job(job: tuple[int, int, int, int, int, str | None, bool]) -> tuple[np.ndarray, np.ndarray | None]:
    grade, scene, visit, render_size, input_size, png, masks = job
    photo = photograph(grade, scene, visit, render_size)
    if png is not None:
        photo.save(png, compress_level=1)
    mask = synthetic.lesion_mask(grade, scene, size=input_size, visit=visit) if masks else None
    return model_input(photo, input_size), mask


def trunk_onnx(cache: Path, input_size: int = INPUT_SIZE) -> Path:
    """The frozen trunk as ONNX (exported once, from the pretrained weights)."""
    path = cache / f"{BACKBONE}-trunk-b{TRUNK_BLOCKS}.onnx"
    if path.exists():
        return path
    import torch

    from .export import to_onnx
    from .heads import Trunk

    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    to_onnx(
        Trunk(),
        torch.zeros(1, 3, input_size, input_size),
        tmp,
        ["x"],
        ["features"],
        {"x": {0: "batch", 2: "h", 3: "w"}, "features": {0: "batch", 2: "fh", 3: "fw"}},
    )
    tmp.rename(path)
    return path


@dataclass
class Cached:
    """A split's cached trunk features with its labels (and lesion masks when kept)."""

    features: np.ndarray  # (n, C, h, w) float16, memory-mapped
    labels: np.ndarray  # (n,) int64
    scenes: np.ndarray  # (n,) int64
    masks: np.ndarray | None  # (n, input, input) bool


def load(split: Split, cache: Path = DEFAULT_CACHE, input_size: int = INPUT_SIZE) -> Cached:
    """A split extracted earlier; raises ``FileNotFoundError`` naming the command otherwise."""
    base = cache / stem(split, input_size)
    done = base.with_suffix(".json")
    if not done.exists():
        raise FileNotFoundError(
            f"{done}: features not extracted; run `python -m ash.features --splits {split.name}` in plugin/"
        )
    meta = np.load(f"{base}-meta.npz")
    masks = None
    if split.masks:
        packed = np.load(f"{base}-masks.npy")
        masks = np.unpackbits(packed, axis=1)[:, : input_size * input_size].reshape(-1, input_size, input_size) > 0
    return Cached(np.load(f"{base}.npy", mmap_mode="r"), meta["labels"], meta["scenes"], masks)


def _jobs(
    split: Split, render: int, size: int, png_dir: Path | None
) -> Iterator[tuple[int, int, int, int, int, str | None, bool]]:
    for i, (grade, scene) in enumerate(split.items()):
        png = str(png_dir / f"{split.name}-{i:05d}.png") if png_dir else None
        yield grade, scene, split.visit, render, size, png, split.masks


def extract(
    split: Split,
    cache: Path = DEFAULT_CACHE,
    input_size: int = INPUT_SIZE,
    render_size: int = RENDER_SIZE,
    workers: int = 2,
    batch: int = 16,
    png_dir: Path | None = None,
) -> Path:
    """Renders ``split`` and caches its trunk features; returns the ``.npy`` path."""
    import onnxruntime as ort
    from tqdm import tqdm

    base = cache / stem(split, input_size)
    if base.with_suffix(".json").exists():
        return Path(f"{base}.npy")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(trunk_onnx(cache, input_size)), options, providers=["CPUExecutionProvider"])
    side = feature_side(input_size)
    out = np.lib.format.open_memmap(
        f"{base}.npy", mode="w+", dtype=np.float16, shape=(split.n, TRUNK_CHANNELS, side, side)
    )
    items = split.items()
    labels = np.array([g for g, _ in items], dtype=np.int64)
    scenes = np.array([s for _, s in items], dtype=np.int64)
    masks = np.zeros((split.n, (input_size * input_size + 7) // 8), np.uint8) if split.masks else None
    if png_dir:
        png_dir.mkdir(parents=True, exist_ok=True)
        with open(png_dir / f"{split.name}.csv", "w", encoding="utf-8") as f:
            f.write("path,label,scene\n")
            for i, (g, s) in enumerate(items):
                f.write(f"{split.name}-{i:05d}.png,{g},{s}\n")
    started = time.time()
    pending: list[np.ndarray] = []
    done = 0
    with get_context("spawn").Pool(workers) as pool:
        results = pool.imap(_render_job, _jobs(split, render_size, input_size, png_dir), chunksize=4)
        for i, (image, mask) in enumerate(tqdm(results, total=split.n, desc=f"features {split.name}")):
            pending.append(image)
            if masks is not None and mask is not None:
                masks[i] = np.packbits(mask.reshape(-1))
            if len(pending) == batch or i == split.n - 1:
                feats = session.run(["features"], {"x": normalise(np.stack(pending))})[0]
                out[done : done + len(pending)] = feats.astype(np.float16)
                done += len(pending)
                pending = []
    out.flush()
    np.savez(f"{base}-meta.npz", labels=labels, scenes=scenes)
    if masks is not None:
        np.save(f"{base}-masks.npy", masks)
    seconds = time.time() - started
    base.with_suffix(".json").write_text(
        json.dumps({"split": split.__dict__, "seconds": seconds, "images_per_second": split.n / seconds}, indent=1)
    )
    return Path(f"{base}.npy")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.features", description="Cache backbone features per split.")
    p.add_argument(
        "--splits",
        default="val,train,train-revisit,val-revisit,query,revisit,db",
        help="comma-separated: " + ",".join(SPLITS),
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--png", type=Path, help="also keep the rendered photographs here (evaluation splits)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    for name in args.splits.split(","):
        split = SPLITS[name]
        png = args.png if args.png and name in ("db", "query", "revisit") else None
        print(extract(split, args.cache, workers=args.workers, png_dir=png), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
