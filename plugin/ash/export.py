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


def code_hex(outputs: np.ndarray) -> str:
    """Packed bits (numpy packbits order, >= 0 → 1) as hex."""
    return np.packbits(outputs >= 0).tobytes().hex()


def export(run: Path, name: str, out_root: Path, version: str = "1.0.0") -> Path:
    cfg, model = load(run)
    out = out_root / name
    (out / "test_vectors").mkdir(parents=True, exist_ok=True)
    size = cfg.net.input_size
    dummy = torch.zeros(2, 3, size, size)
    # The wrapper must be in eval mode too: the exporter restores the
    # wrapper's mode afterwards, recursively, which would leave BatchNorm
    # in training mode.
    torch.onnx.export(
        _Exported(model).eval(),
        (dummy,),
        str(out / "model.onnx"),
        input_names=["image"],
        output_names=["hash", "attention"],
        dynamic_axes={"image": {0: "batch"}, "hash": {0: "batch"}, "attention": {0: "batch"}},
        opset_version=17,
        dynamo=False,
        external_data=False,
    )
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
    print(export(args.run, args.name, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
