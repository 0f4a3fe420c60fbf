"""Heads on cached features: the attention's warm start, the loss, training and export."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from ash import features, headtrain
from ash.heads import HashHead, HeadConfig, TrainableAttention
from ash.losses import graded_eye_loss

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "encoder-manifest.schema.json").read_text())


def test_attention_starts_as_plain_pooling() -> None:
    torch.manual_seed(0)
    with_att = HashHead(HeadConfig(bits=16, neck=32, attention=True)).eval()
    without = HashHead(HeadConfig(bits=16, neck=32, attention=False)).eval()
    without.load_state_dict({k: v for k, v in with_att.state_dict().items() if not k.startswith("attention.")})
    x = torch.randn(3, features.TRUNK_CHANNELS, 6, 6)
    h1, a1 = with_att(x)
    h2, a2 = without(x)
    assert torch.allclose(a1, torch.full_like(a1, 0.5))
    assert torch.equal(a2, torch.ones_like(a2))
    assert torch.allclose(h1, h2, atol=1e-6)


def test_attention_map_does_not_depend_on_the_feature_scale() -> None:
    # ReLU6 features near 6 saturated the plain module's sigmoid; the
    # normalised descriptors make the map the same at any scale.
    att = TrainableAttention(3).train()
    torch.nn.init.constant_(att.conv.weight, 0.2)
    f = torch.rand(4, 8, 5, 5)
    _, small = att(f)
    _, large = att(f * 1000)
    assert torch.allclose(small, large, atol=1e-3)
    assert 0.01 < small.min().item() and small.max().item() < 0.99


def test_graded_eye_loss_by_hand() -> None:
    k = 8
    plus, minus = torch.ones(1, k), -torch.ones(1, k)
    # Different grades, opposite codes: d = 4 > margin; saturated and balanced.
    h = torch.cat([plus, minus])
    assert float(graded_eye_loss(h, torch.tensor([0, 1]), torch.tensor([0, 1]))) == pytest.approx(0.0)
    # The same grade, two eyes, one code: ½·relu(0.17 − 0) plus β·mean(1²).
    h = torch.cat([plus, plus])
    loss = graded_eye_loss(h, torch.tensor([2, 2]), torch.tensor([0, 1]))
    assert float(loss) == pytest.approx(0.5 * 0.17 + 0.1 * 1.0)
    # The same eye twice, one code: nothing to pull; only the balance term.
    loss = graded_eye_loss(h, torch.tensor([2, 2]), torch.tensor([5, 5]))
    assert float(loss) == pytest.approx(0.1)
    # The same eye, one bit apart: d = 4/8 = 0.5, pulled with weight ½.
    h = torch.cat([plus, plus.clone()])
    h[1, 0] = -1
    loss = graded_eye_loss(h, torch.tensor([2, 2]), torch.tensor([5, 5]))
    balance = ((h.mean(dim=0) ** 2).mean()).item()
    assert float(loss) == pytest.approx(0.5 * 0.5 + 0.1 * balance)


def _fixture(n: int, seed: int, side: int = 4) -> features.Cached:
    """Feature maps in which each grade lights one channel at one random place (a 'lesion')."""
    rng = np.random.default_rng(seed)
    maps = rng.normal(0, 0.3, (n, features.TRUNK_CHANNELS, side, side)).astype(np.float16)
    labels = np.resize(np.arange(5), n)
    for i, g in enumerate(labels):
        y, x = rng.integers(0, side, 2)
        maps[i, 10 + g, y, x] += 6.0
    return features.Cached(maps, labels.astype(np.int64), np.arange(n), None)


def test_a_head_learns_grades_from_small_cached_maps(tmp_path: Path) -> None:
    train = _fixture(400, 1)
    revisit = features.Cached(train.features[:100] + np.float16(0.1), train.labels[:100], train.scenes[:100], None)
    val = _fixture(100, 2)
    val_revisit = features.Cached(val.features[:25], val.labels[:25], val.scenes[:25], None)
    cfg = headtrain.HeadTrainConfig(
        head=HeadConfig(bits=16, neck=32), epochs=4, pairs=8, singles=24, lr=1e-2, out=str(tmp_path / "run"), threads=1
    )
    result = headtrain.train(cfg, headtrain.Data(train, revisit, val, val_revisit))
    history = result["history"]
    assert len(history) == 4
    # Chance MAP is 0.2 over five balanced grades.
    assert max(h["val_map"] for h in history) > 0.8
    _, head = headtrain.load(tmp_path / "run")
    h, att = headtrain.outputs(head, val.features)
    assert h.shape == (100, 16) and att.shape == (100, 1, 4, 4)
    assert float(att.min()) >= 0 and float(att.max()) <= 1


def test_export_ships_trunk_and_head_as_one_model(tmp_path: Path) -> None:
    import onnxruntime as ort

    from ash.export import export_head

    run = tmp_path / "run"
    run.mkdir()
    cfg = headtrain.HeadTrainConfig(head=HeadConfig(bits=12, neck=16), out=str(run))
    torch.manual_seed(0)
    torch.save(HashHead(cfg.head).state_dict(), run / "head.pt")
    (run / "config.json").write_text(json.dumps({"head": cfg.head.__dict__, "out": str(run)}))
    out = export_head(run, "effnet-test-12", tmp_path / "models")
    manifest = json.loads((out / "manifest.json").read_text())
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["input"]["size"] == [features.INPUT_SIZE] * 2
    assert manifest["input"]["mean"] == list(features.IMAGENET_MEAN)
    assert (out / "model.onnx").stat().st_size < 20 * 2**20
    # The product's rule: (pixel · scale − mean) / std, from the stored PNGs.
    vectors = json.loads((out / "test_vectors.json").read_text())["vectors"]
    pixels = np.stack([np.asarray(Image.open(out / v["image"]).convert("RGB")) for v in vectors])
    inp = manifest["input"]
    mean = np.array(inp["mean"], np.float32)[:, None, None]
    std = np.array(inp["std"], np.float32)[:, None, None]
    x = (pixels.transpose(0, 3, 1, 2).astype(np.float32) * inp["scale"] - mean) / std
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    hash_out, att = sess.run(["hash", "attention"], {"image": x})
    assert np.abs(hash_out - np.array([v["outputs"] for v in vectors])).max() < 1e-3
    side = features.feature_side()
    assert att.shape == (len(vectors), 1, side, side)


def test_the_last_block_can_train_on_the_cached_maps() -> None:
    head = HashHead(HeadConfig(bits=8, neck=16, last_block=True)).eval()
    h, att = head(torch.randn(2, features.TRUNK_CHANNELS, 4, 4))
    assert h.shape == (2, 8) and att.shape == (2, 1, 4, 4)
    # It starts from the ImageNet weights, and its parameters train.
    assert head.block is not None and all(p.requires_grad for p in head.block.parameters())
