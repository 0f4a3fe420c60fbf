"""Export: ``python -m ash.export RUN --name ash-synfundus-48 --out models/``.

Writes the encoder plugin directory that the Rust side loads:

* ``model.onnx`` — one file (no external data), opset 17, dynamic batch;
  input ``image`` (N, 3, H, W) float32 RGB in 0..255 (resized to H × W
  bilinearly, no normalisation); outputs ``hash`` (N, K), the real values
  before the sign, and ``attention`` (N, 1, h, w) in [0, 1];
* ``manifest.json`` — validated by ``schemas/encoder-manifest.schema.json``;
* ``test_vectors.json`` and ``test_vectors/*.png`` — images with their
  expected outputs and codes, for the Rust parity test;

and checks that ONNX Runtime reproduces PyTorch within 1e-4.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import synthetic
from .train import load, to_tensor

PARITY_TOLERANCE = 1e-4


class _Exported(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(image)


def to_onnx(
    module: torch.nn.Module,
    dummy: torch.Tensor,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """``module`` in eval mode as one ONNX file (no external data), opset 17."""
    torch.onnx.export(
        module.eval(),
        (dummy,),
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=17,
        dynamo=False,
        external_data=False,
    )


def export_hash_model(model: torch.nn.Module, dummy: torch.Tensor, path: Path) -> None:
    """An encoder as the plugin contract names it: ``image`` → ``hash``, ``attention``, any batch."""
    # The wrapper must be in eval mode too: the exporter restores the
    # wrapper's mode afterwards, recursively, which would leave BatchNorm
    # in training mode.
    to_onnx(
        _Exported(model).eval(),
        dummy,
        path,
        ["image"],
        ["hash", "attention"],
        {"image": {0: "batch"}, "hash": {0: "batch"}, "attention": {0: "batch"}},
    )


def code_hex(outputs: np.ndarray) -> str:
    """Packed bits (numpy packbits order, >= 0 → 1) as hex."""
    return np.packbits(outputs >= 0).tobytes().hex()


def export(run: Path, name: str, out_root: Path, version: str = "1.0.0") -> Path:
    cfg, model = load(run)
    out = out_root / name
    (out / "test_vectors").mkdir(parents=True, exist_ok=True)
    size = cfg.net.input_size
    dummy = torch.zeros(2, 3, size, size)
    export_hash_model(model, dummy, out / "model.onnx")
    # Test vectors: one synthetic image per grade, stored as PNG at input size.
    vectors = []
    images = []
    for grade in synthetic.GRADES:
        img = synthetic.fundus(grade, scene_seed=900 + grade, size=size)
        file = f"test_vectors/grade{grade}.png"
        img.save(out / file)
        images.append(np.asarray(Image.open(out / file).convert("RGB")))
    batch = np.stack(images)
    model.eval()
    with torch.no_grad():
        h, _ = model(to_tensor(batch))
    h = h.numpy()
    for grade, row in zip(synthetic.GRADES, h, strict=True):
        vectors.append(
            {"image": f"test_vectors/grade{grade}.png", "label": grade, "outputs": row.tolist(), "code": code_hex(row)}
        )
    (out / "test_vectors.json").write_text(json.dumps({"tolerance": 1e-3, "vectors": vectors}, indent=1))

    max_diff = parity(out / "model.onnx", batch, h)
    metrics_path = run / "metrics.json"
    manifest = {
        "name": name,
        "version": version,
        "bits": cfg.net.bits,
        "architecture": f"{cfg.net.backbone}{'' if cfg.net.attention else ' (no attention)'}, loss {cfg.loss}",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "size": [size, size],
            "channel_order": "RGB",
            "dtype": "float32",
            "resize": "bilinear",
            "scale": 1.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
        },
        "outputs": {"hash": "hash", "attention": "attention"},
        "threshold": 0.0,
        "threshold_rule": "bit = 1 when output >= threshold; bits packed in numpy packbits order",
        "training_data": f"synthetic fundus (ash.synthetic), {cfg.train_n} images, data seed {cfg.data_seed}",
        "metrics": json.loads(metrics_path.read_text()) if metrics_path.exists() else {},
        "onnx_parity_max_abs_diff": max_diff,
        "model_sha256": hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest(),
    }
    manifest["metrics"].pop("pr_curve", None)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def parity(onnx_path: Path, batch: np.ndarray, expected: np.ndarray) -> float:
    """Max |ONNX Runtime − PyTorch| over the batch; raises above the tolerance."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["hash"], {"image": to_tensor(batch).numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"{onnx_path}: ONNX Runtime differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}")
    return diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.export", description="Export a trained run as an encoder plugin.")
    p.add_argument("run", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, default=Path("models"))
    args = p.parse_args(argv)
    # A run of ash.headtrain (head.pt on cached features) ships with its trunk.
    if (args.run / "head.pt").exists():
        print(export_head(args.run, args.name, args.out))
    else:
        print(export(args.run, args.name, args.out))
    return 0


def export_head(run: Path, name: str, out_root: Path, version: str = "2.0.0") -> Path:
    """A head trained on cached features (:mod:`ash.headtrain`), shipped with its trunk as one ONNX file.

    The model's input is the normalised image (the manifest's ImageNet
    ``mean``/``std`` after ``scale`` 1/255, what the backbone was trained
    with); test vectors are photographs rendered at
    :data:`ash.features.RENDER_SIZE` and resized like the product does.
    """
    from . import features, headtrain
    from .heads import FullModel

    cfg, head = headtrain.load(run)
    model = FullModel(head).eval()
    out = out_root / name
    (out / "test_vectors").mkdir(parents=True, exist_ok=True)
    size = features.INPUT_SIZE
    export_hash_model(model, torch.zeros(2, 3, size, size), out / "model.onnx")
    images = []
    for grade in synthetic.GRADES:
        photo = features.photograph(grade, 900 + grade, 0, features.RENDER_SIZE)
        file = f"test_vectors/grade{grade}.png"
        Image.fromarray(features.model_input(photo, size)).save(out / file)
        images.append(np.asarray(Image.open(out / file).convert("RGB")))
    batch = features.normalise(np.stack(images))
    with torch.no_grad():
        h = model(torch.from_numpy(batch))[0].numpy()
    vectors = [
        {"image": f"test_vectors/grade{g}.png", "label": g, "outputs": row.tolist(), "code": code_hex(row)}
        for g, row in zip(synthetic.GRADES, h, strict=True)
    ]
    (out / "test_vectors.json").write_text(json.dumps({"tolerance": 1e-3, "vectors": vectors}, indent=1))

    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    max_diff = float(np.abs(sess.run(["hash"], {"image": batch})[0] - h).max())
    if max_diff > PARITY_TOLERANCE:
        raise RuntimeError(f"{out}: ONNX Runtime differs from PyTorch by {max_diff:.2e} > {PARITY_TOLERANCE}")
    head_desc = (
        f"{'block 15 (trained) + ' if cfg.head.last_block else ''}{cfg.head.neck}-channel 1x1 neck, "
        f"{'ASH spatial attention (normalised, zero-initialised), ' if cfg.head.attention else 'no attention, '}"
        f"average+max pooling, linear to {cfg.head.bits} bits, tanh; loss {cfg.loss}"
        + (f" (within {cfg.within}, spread {cfg.spread})" if cfg.loss == "graded-eye" else "")
    )
    metrics_path = run / "test_metrics.json"
    manifest = {
        "name": name,
        "version": version,
        "bits": cfg.head.bits,
        "architecture": f"EfficientNet-Lite0 blocks 0-14 (ImageNet weights, frozen) + {head_desc}",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "size": [size, size],
            "channel_order": "RGB",
            "dtype": "float32",
            "resize": "bilinear",
            "scale": 1.0 / 255.0,
            "mean": list(features.IMAGENET_MEAN),
            "std": list(features.IMAGENET_STD),
        },
        "outputs": {"hash": "hash", "attention": "attention"},
        "attention_map": (
            f"{features.feature_side(size)}x{features.feature_side(size)} map of the ASH attention over the "
            "stride-32 features"
            if cfg.head.attention
            else "all ones: this model has no attention module"
        ),
        "threshold": 0.0,
        "threshold_rule": "bit = 1 when output >= threshold; bits packed in numpy packbits order",
        "training_data": (
            f"synthetic fundus (ash.synthetic) rendered at {features.RENDER_SIZE} px: "
            f"{features.SPLITS['train'].n} photographs (seed {features.SPLITS['train'].seed}) and "
            f"{features.SPLITS['train-revisit'].n} later visits, {cfg.epochs} epochs; checkpoint chosen on "
            f"{features.SPLITS['val'].n} validation photographs (seed {features.SPLITS['val'].seed})"
        ),
        "metrics": json.loads(metrics_path.read_text()) if metrics_path.exists() else {},
        "onnx_parity_max_abs_diff": max_diff,
        "model_sha256": hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
