"""A two-step training run, evaluation metrics and ONNX export parity."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from ash import export, metrics, train
from ash.models import NetConfig


def test_metrics_on_a_known_ranking() -> None:
    db = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=np.uint8)
    db_labels = np.array([0, 0, 1, 1])
    q = np.array([[0, 0]], dtype=np.uint8)
    r = metrics.evaluate(q, np.array([0]), db, db_labels)
    # Ranking by distance, ties in database order: 0 (d0), 1 (d1), 3 (d1), 2 (d2).
    assert r.map == pytest.approx(1.0)
    assert r.p_at[5] == pytest.approx(2 / 4)
    assert r.p_radius2 == pytest.approx(2 / 4)
    r = metrics.evaluate(q, np.array([1]), db, db_labels)
    assert r.map == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_two_step_training_and_export_parity(tmp_path: Path) -> None:
    cfg = train.TrainConfig(
        net=NetConfig(bits=12, input_size=48),
        epochs=2,
        batch_size=8,
        train_n=16,
        val_n=8,
        out=str(tmp_path / "run"),
        threads=1,
    )
    result = train.train(cfg, cache=None)
    assert len(result["history"]) == 2
    assert (tmp_path / "run" / "best.pt").exists()
    out = export.export(tmp_path / "run", "test-12", tmp_path / "models")
    manifest = json.loads((out / "manifest.json").read_text())
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "encoder-manifest.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    assert manifest["bits"] == 12 and manifest["input"]["size"] == [48, 48]
    assert manifest["onnx_parity_max_abs_diff"] <= export.PARITY_TOLERANCE
    vectors = json.loads((out / "test_vectors.json").read_text())["vectors"]
    assert len(vectors) == 5 and all(len(v["code"]) == 4 for v in vectors)
    assert (out / "model.onnx").stat().st_size < 20 * 2**20


def test_config_from_json_rejects_unknown_loss() -> None:
    with pytest.raises(ValueError, match="loss"):
        train.TrainConfig.from_json('{"loss": "triplet"}')
