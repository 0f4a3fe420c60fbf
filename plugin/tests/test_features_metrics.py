"""Feature caching, the generator's visits and lesion masks, and the new metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ash import features, metrics, synthetic


def test_normalise_is_the_manifest_rule() -> None:
    img = np.zeros((1, 2, 2, 3), np.uint8)
    img[0, 0, 0] = (255, 128, 0)
    x = features.normalise(img)
    assert x.shape == (1, 3, 2, 2)
    assert x[0, 0, 0, 0] == pytest.approx((1.0 - 0.485) / 0.229, rel=1e-6)
    assert x[0, 1, 0, 0] == pytest.approx((128 / 255 - 0.456) / 0.224, rel=1e-6)
    assert x[0, 2, 0, 0] == pytest.approx((0.0 - 0.406) / 0.225, rel=1e-6)


def test_cache_names_hold_every_setting() -> None:
    a = features.stem(features.Split("x", 10, 3))
    assert a != features.stem(features.Split("x", 10, 3, visit=1))
    assert a != features.stem(features.Split("x", 10, 4))
    assert a != features.stem(features.Split("x", 10, 3, of=20))
    assert a != features.stem(features.Split("x", 10, 3), input_size=256)
    assert f"b{features.TRUNK_BLOCKS}" in a and features.BACKBONE in a


def test_a_split_taken_from_a_larger_one_is_its_prefix() -> None:
    revisit, db = features.SPLITS["revisit"], features.SPLITS["db"]
    assert revisit.items() == db.items()[: revisit.n]
    assert revisit.visit == 1 and db.visit == 0


def test_missing_features_name_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"python -m ash.features --splits val"):
        features.load(features.SPLITS["val"], tmp_path)


def test_a_later_visit_is_the_same_eye_photographed_differently() -> None:
    first = np.asarray(synthetic.fundus(3, 77, size=128), np.int16)
    again = np.asarray(synthetic.fundus(3, 77, size=128, visit=1), np.int16)
    other = np.asarray(synthetic.fundus(3, 77, size=128, visit=2), np.int16)
    assert np.abs(first - again).mean() > 1 and np.abs(again - other).mean() > 1
    # The same lesions, moved by the new rotation and field of view.
    m0 = synthetic.lesion_mask(3, 77, size=256)
    m1 = synthetic.lesion_mask(3, 77, size=256, visit=1)
    assert 0.5 < m1.sum() / m0.sum() < 2.0 and (m0 != m1).any()
    with pytest.raises(ValueError, match="visit"):
        synthetic.fundus(1, 1, visit=-1)


def test_lesion_masks_mark_where_the_grade_changes_the_picture() -> None:
    assert not synthetic.lesion_mask(0, 5, size=256).any()
    base = np.asarray(synthetic.fundus(0, 5, size=256), np.int16)
    for grade in (1, 2, 3, 4):
        changed = np.abs(np.asarray(synthetic.fundus(grade, 5, size=256), np.int16) - base).max(axis=-1) > 12
        mask = synthetic.lesion_mask(grade, 5, size=256)
        assert mask.any()
        # The blur (radius <= 1 px) spreads a lesion by a pixel or two.
        near = np.zeros_like(mask)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                near |= np.roll(mask, (dy, dx), axis=(0, 1))
        assert (changed & near).sum() / changed.sum() > 0.95, grade


def test_code_statistics_by_hand() -> None:
    codes = np.array([[0, 1], [0, 1], [1, 1], [1, 0]], np.uint8)
    s = metrics.code_statistics(codes)
    assert s["distinct"] == 3
    # Bit 0 is ones half the time, bit 1 three times in four.
    assert s["bit_balance"] == pytest.approx((0.0 + 0.25) / 2)
    h1 = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert s["bit_entropy"] == pytest.approx((1.0 + h1) / 2)
    assert s["code_entropy"] == pytest.approx(-(0.5 * np.log2(0.5) + 2 * 0.25 * np.log2(0.25)))


def test_same_item_recall_counts_ties_in_random_order() -> None:
    db = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1]], np.uint8)
    q = np.array([[0, 0, 0], [1, 1, 1]], np.uint8)
    # Query 0's own item ties with two others for 2 places: 2/3. Query 1's is first.
    assert metrics.same_item_recall(q, db, np.array([1, 3]), k=2) == pytest.approx((2 / 3 + 1) / 2)
    assert metrics.tied_pages(q, db, k=2) == pytest.approx(1 / 2)


def test_map_per_grade_by_hand() -> None:
    db = np.array([[0, 0], [1, 1]], np.uint8)
    q = np.array([[0, 0], [0, 1]], np.uint8)
    per = metrics.per_label_map(q, np.array([0, 1]), db, np.array([0, 1]))
    # Query 1 is at distance 1 from both; ties in database order put grade 0 first.
    assert per == {0: pytest.approx(1.0), 1: pytest.approx(0.5)}


def test_attention_localisation_by_hand() -> None:
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:4, 2:4] = True
    masks[1, 15:17, 15:17] = True
    maps = np.zeros((2, 1, 2, 2), np.float32)
    maps[0, 0, 0, 0] = 1.0  # over image 0's lesion
    maps[1, 0, 0, 0] = 1.0  # far from image 1's lesion
    r = metrics.attention_localisation(maps, masks, np.array([1, 2]), tolerance=2)
    assert r["pointing"] == {1: 1.0, 2: 0.0}
    assert r["top5_share"][1] == pytest.approx(1.0)
    assert r["top5_share"][2] == pytest.approx(0.0)
