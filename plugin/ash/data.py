"""Loaders for the labelled image sets users bring.

Three layouts are read: one folder per class (``root/<label>/*.png``), a CSV
of ``path,label`` (paths relative to the CSV), and MedMNIST ``.npz`` files
(RetinaMNIST, OCTMNIST: ``{split}_images`` and ``{split}_labels``). Every
image is decoded and checked up front; a file that cannot be used is
reported with its path and the reason and skipped, so one bad file never
stops training.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


@dataclass
class Problem:
    """A file or row that was skipped."""

    source: str
    reason: str


@dataclass
class LabelledImages:
    """Decoded RGB images (uint8, ``size`` x ``size``) with integer labels."""

    images: np.ndarray  # (n, size, size, 3) uint8
    labels: np.ndarray  # (n,) int64
    classes: list[str]
    problems: list[Problem] = field(default_factory=list)


def _decode(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        if im.width == 0 or im.height == 0:
            raise ValueError("image has zero size")
        rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _collect(items: list[tuple[Path, str]], size: int, problems: list[Problem]) -> LabelledImages:
    classes = sorted({label for _, label in items}, key=lambda s: (len(s), s))
    index = {c: i for i, c in enumerate(classes)}
    images, labels = [], []
    for path, label in items:
        try:
            images.append(_decode(path, size))
            labels.append(index[label])
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            problems.append(Problem(str(path), f"cannot read image: {e}"))
    arr = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return LabelledImages(arr, np.asarray(labels, dtype=np.int64), classes, problems)


def load_folders(root: Path, size: int = 128) -> LabelledImages:
    """``root/<class>/<image>``: the folder name is the label."""
    items = [
        (p, d.name)
        for d in sorted(root.iterdir())
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return _collect(items, size, [])


def load_csv(csv_path: Path, size: int = 128) -> LabelledImages:
    """A CSV with ``path`` and ``label`` columns; paths relative to the CSV."""
    problems: list[Problem] = []
    items: list[tuple[Path, str]] = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path}: needs a header with 'path' and 'label' columns")
        for line, row in enumerate(reader, start=2):
            path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not path or not label:
                problems.append(Problem(f"{csv_path}:{line}", "empty path or label"))
                continue
            items.append((csv_path.parent / path, label))
    return _collect(items, size, problems)


def load_npz(npz_path: Path, split: str = "train", size: int = 128) -> LabelledImages:
    """A MedMNIST ``.npz`` split: grey or RGB images, labels of shape (n, 1)."""
    with np.load(npz_path) as z:
        try:
            images, labels = z[f"{split}_images"], z[f"{split}_labels"]
        except KeyError as e:
            raise ValueError(f"{npz_path}: no {split}_images/{split}_labels arrays ({e})") from e
    if len(images) != len(labels):
        raise ValueError(f"{npz_path}: {len(images)} images but {len(labels)} labels")
    out = []
    for im in images:
        pil = Image.fromarray(im.astype(np.uint8))
        out.append(np.asarray(pil.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0].astype(np.int64)
    classes = [str(c) for c in sorted(set(labels.tolist()))]
    remap = {int(c): i for i, c in enumerate(classes)}
    return LabelledImages(
        np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8),
        np.asarray([remap[int(v)] for v in labels], dtype=np.int64),
        classes,
    )
