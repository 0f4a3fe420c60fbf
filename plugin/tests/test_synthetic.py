"""The synthetic fundus generator: determinism, grades, confounders."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from ash import synthetic


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_same_seed_same_bytes() -> None:
    a = png_bytes(synthetic.fundus(3, scene_seed=42, size=128))
    b = png_bytes(synthetic.fundus(3, scene_seed=42, size=128))
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    c = png_bytes(synthetic.fundus(3, scene_seed=43, size=128))
    assert a != c


def test_grades_differ_only_by_small_lesions() -> None:
    base = np.asarray(synthetic.fundus(0, scene_seed=7, size=256), dtype=np.int16)
    changed = []
    for grade in (1, 2, 3, 4):
        img = np.asarray(synthetic.fundus(grade, scene_seed=7, size=256), dtype=np.int16)
        diff = np.abs(img - base).max(axis=-1) > 12
        changed.append(diff.mean())
        assert 0 < diff.mean() < 0.08, f"grade {grade} changes {diff.mean():.3%} of pixels"
    # More severe grades add findings.
    assert changed == sorted(changed)


def test_image_is_a_fundus_on_black() -> None:
    img = np.asarray(synthetic.fundus(2, scene_seed=1, size=128))
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert img[0, 0].sum() == 0 and img[-1, -1].sum() == 0  # outside the field of view
    centre = img[54:74, 54:74].astype(float).mean(axis=(0, 1))
    assert centre[0] > centre[1] > centre[2]  # red retina


def test_confounders_vary_independently_of_grade() -> None:
    items = synthetic.dataset(500, seed=3)
    grades = np.array([g for g, _ in items])
    assert sorted(set(grades.tolist())) == [0, 1, 2, 3, 4]
    assert np.bincount(grades).min() == 100
    eyes = np.array([synthetic.eye_of(s) == "OD" for _, s in items])
    for g in range(5):
        share = eyes[grades == g].mean()
        assert 0.3 < share < 0.7, f"grade {g}: {share:.2f} right eyes"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="grade"):
        synthetic.fundus(5, scene_seed=1)
    with pytest.raises(ValueError, match="size"):
        synthetic.fundus(1, scene_seed=1, size=8)


def test_cli_writes_images_and_labels(tmp_path) -> None:
    assert synthetic.main(["--n", "6", "--size", "64", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    assert lines[0] == "path,label,eye" and len(lines) == 7
    assert len(list(tmp_path.glob("*.png"))) == 6
