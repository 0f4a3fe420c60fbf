"""Loaders for user data sets, with broken files skipped and reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ash import data


def write_image(path: Path, value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (20, 16), color=value if mode == "L" else (value, value, value)).save(path)


def test_folders_with_a_broken_image(tmp_path: Path) -> None:
    write_image(tmp_path / "0" / "a.png", 10)
    write_image(tmp_path / "0" / "b.jpg", 20)
    write_image(tmp_path / "2" / "c.png", 30, mode="L")
    (tmp_path / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "2" / "notes.txt").write_text("ignored")
    got = data.load_folders(tmp_path, size=8)
    assert got.images.shape == (3, 8, 8, 3)
    assert got.classes == ["0", "2"]
    assert got.labels.tolist() == [0, 0, 1]
    assert len(got.problems) == 1 and "broken.png" in got.problems[0].source


def test_csv_with_missing_files_and_empty_rows(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "x.png", 50)
    write_image(tmp_path / "img" / "y.png", 60)
    (tmp_path / "labels.csv").write_text("path,label\nimg/x.png,1\nimg/y.png,0\nimg/missing.png,1\n,3\n")
    got = data.load_csv(tmp_path / "labels.csv", size=4)
    assert got.images.shape == (2, 4, 4, 3)
    assert [got.classes[i] for i in got.labels] == ["1", "0"]
    reasons = sorted(p.reason.split(":")[0] for p in got.problems)
    assert reasons == ["cannot read image", "empty path or label"]


def test_csv_without_header_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="'path' and 'label'"):
        data.load_csv(tmp_path / "l.csv")


def test_medmnist_npz(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    np.savez(tmp_path / "octmnist.npz", train_images=images, train_labels=np.array([[3], [1], [3]]))
    got = data.load_npz(tmp_path / "octmnist.npz", size=14)
    assert got.images.shape == (3, 14, 14, 3)
    assert got.classes == ["1", "3"] and got.labels.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="test_images"):
        data.load_npz(tmp_path / "octmnist.npz", split="test")
