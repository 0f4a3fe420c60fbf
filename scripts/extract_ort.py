"""Copies ONNX Runtime's shared libraries out of its PyPI wheel.

Usage: extract_ort.py WHEEL_DIR OUT_DIR
"""

import sys
import zipfile
from pathlib import Path

wheel_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
wheels = sorted(wheel_dir.glob("onnxruntime-*.whl"))
if not wheels:
    sys.exit(f"no onnxruntime wheel in {wheel_dir}")
with zipfile.ZipFile(wheels[-1]) as wheel:
    for name in wheel.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            target = out_dir / base
            partial = target.with_name(base + ".partial")
            partial.write_bytes(wheel.read(name))
            partial.replace(target)  # atomic: make never sees half a library
            print(f"extracted {target}")
