"""Every shipped encoder plugin under models/: a valid manifest, a single-file
ONNX model that reproduces its own test vectors in ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "models").glob("*") if p.is_dir())
SCHEMA = json.loads((ROOT.parent / "schemas" / "encoder-manifest.schema.json").read_text())


def test_the_ash_models_are_shipped() -> None:
    assert [p.name for p in SHIPPED] == [
        "ash-effnet-12",
        "ash-effnet-48",
        *(f"ash-synfundus-{b}" for b in (12, 24, 36, 48)),
    ]


@pytest.mark.parametrize("plugin", SHIPPED, ids=lambda p: p.name)
def test_plugin_contract(plugin: Path) -> None:
    manifest = json.loads((plugin / "manifest.json").read_text())
    jsonschema.validate(manifest, SCHEMA)
    assert (plugin / "model.onnx").stat().st_size <= 20 * 2**20
    assert (plugin / "MODEL_CARD.md").read_text().count("not a medical device") == 1
    model = onnx.load(str(plugin / "model.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    sess = ort.InferenceSession(str(plugin / "model.onnx"), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == manifest["input"]["name"] and inp.shape[1:] == [3, *manifest["input"]["size"]]
    vectors = json.loads((plugin / "test_vectors.json").read_text())["vectors"]
    batch = np.stack([np.asarray(Image.open(plugin / v["image"]).convert("RGB")) for v in vectors])
    spec = manifest["input"]
    mean = np.array(spec["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.array(spec["std"], np.float32).reshape(1, -1, 1, 1)
    x = (batch.transpose(0, 3, 1, 2).astype(np.float32) * spec["scale"] - mean) / std
    out = sess.run([manifest["outputs"]["hash"]], {inp.name: x})[0]
    assert out.shape == (len(vectors), manifest["bits"])
    for row, v in zip(out, vectors, strict=True):
        assert np.abs(row - np.array(v["outputs"])).max() <= 2e-4
        assert np.packbits(row >= manifest["threshold"]).tobytes().hex() == v["code"]
