"""`make bench`: what each shipped encoder costs through `ash-search ingest`.

One run, the same 512 x 512 PNG photographs (BENCH_MODEL_IMAGES, default
400, the generator's, with metadata) ingested into a fresh index per model,
each model with the same threads: the shallow `ash-synfundus-*` models
(128 px input) beside the EfficientNet-Lite0 `ash-effnet-*` models (384 px).
Prints images/s per model (the whole ingest: decoding, resizing,
inference, documents, commit), its ratio to ash-synfundus-48 and the
model's size.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "ash-search"
MODELS = ["ash-synfundus-48", "ash-synfundus-12", "ash-effnet-48", "ash-effnet-12"]
sys.path.insert(0, str(ROOT / "plugin"))
from ash.synthetic import dataset, eye_of, fundus  # noqa: E402


def write_records(n: int, folder: Path) -> Path:
    records = folder / "records.jsonl"
    with open(records, "w", encoding="utf-8") as f:
        for i, (grade, scene) in enumerate(dataset(n, seed=5)):
            name = f"case-{i:05d}.png"
            fundus(grade, scene, size=512).save(folder / name, compress_level=1)
            f.write(json.dumps({"id": f"c{i}", "image": name, "grade": grade, "eye": eye_of(scene)}) + "\n")
    return records


def ingest(model: str, records: Path, work: Path) -> dict[str, float]:
    schema = json.loads((ROOT / "schemas/examples/index.json").read_text())
    schema["hash"]["encoder"] = str(ROOT / "plugin/models" / model)
    schema["hash"]["bits"] = json.loads((ROOT / "plugin/models" / model / "manifest.json").read_text())["bits"]
    config = work / f"{model}.json"
    config.write_text(json.dumps(schema))
    index = work / f"index-{model}"
    subprocess.run([str(BIN), "init", str(index), "--schema", str(config)], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([str(BIN), "ingest", str(index), str(records), "--quiet"], check=True, capture_output=True)
    return {
        "seconds": time.perf_counter() - started,
        "model_mib": (ROOT / "plugin/models" / model / "model.onnx").stat().st_size / 2**20,
    }


def main() -> int:
    n = int(os.environ.get("BENCH_MODEL_IMAGES", "400"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; {n} photographs 512 x 512 PNG")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        records = write_records(n, work)
        rows = {m: ingest(m, records, work) for m in MODELS}
    base = n / rows["ash-synfundus-48"]["seconds"]
    print("| model | images/s through ingest | vs ash-synfundus-48 | model MB |")
    print("|---|---|---|---|")
    for model, r in rows.items():
        speed = n / r["seconds"]
        print(f"| {model} | {speed:.1f} | {speed / base:.2f}x | {r['model_mib']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
