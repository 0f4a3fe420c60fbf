"""`make bench`: image encoding and ingestion against Python onnxruntime.

One run, the same model (plugin/models/ash-synfundus-48), the same image
files and the same thread count for every side:
  * Python: Pillow decode + bilinear resize, numpy stacking, onnxruntime
    InferenceSession (intra-op threads = T), batches of 32, in this process;
  * `ash-search encode`: the same files, ONNX Runtime threads = T and T
    decode threads (rayon);
  * `ash-search ingest`: a JSONL of the files with metadata → an index
    (decode overlapping inference, documents, commits).
Images: BENCH_IMAGES files (default 10,000), copies of 100 distinct
synthetic fundus photographs saved as 384 x 384 JPEG (so both sides decode
and resize). Prints images/s, ratios, where the time went, peak memory, and
how many codes agree between Python and Rust.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "ash-search"
MODEL = ROOT / "plugin" / "models" / "ash-synfundus-48"
sys.path.insert(0, str(ROOT / "plugin"))
from ash.synthetic import dataset, fundus  # noqa: E402

BATCH = 32


def make_images(folder: Path, n: int) -> list[Path]:
    distinct = []
    for i, (grade, scene) in enumerate(dataset(100, seed=3, size=384)):
        path = folder / f"src-{i:03d}.jpg"
        fundus(grade, scene, size=384).save(path, quality=90)
        distinct.append(path)
    files = []
    for i in range(n):
        path = folder / f"img-{i:05d}.jpg"
        shutil.copyfile(distinct[i % len(distinct)], path)
        files.append(path)
    return files


def python_encode(files: list[Path], threads: int) -> tuple[float, float, np.ndarray]:
    """Seconds in all, seconds decoding, and the codes (packbits)."""
    manifest = json.loads((MODEL / "manifest.json").read_text())
    h, w = manifest["input"]["size"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    codes, decode = [], 0.0
    started = time.perf_counter()
    for i in range(0, len(files), BATCH):
        t = time.perf_counter()
        batch = np.stack(
            [
                np.asarray(Image.open(f).convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
                for f in files[i : i + BATCH]
            ]
        ).transpose(0, 3, 1, 2)
        decode += time.perf_counter() - t
        out = session.run([manifest["outputs"]["hash"]], {manifest["input"]["name"]: np.ascontiguousarray(batch)})[0]
        codes.append(np.packbits(out >= manifest["threshold"], axis=1))
    return time.perf_counter() - started, decode, np.concatenate(codes)


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Wall seconds, peak RSS (MiB, as the child reports it), stdout and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        status = proc.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if status != 0:
        sys.exit(f"{cmd[:3]} failed:\n{stderr}")
    # getrusage would report the parent's peak too (Linux keeps it across
    # exec), so the binary reports its own VmHWM.
    peak = float(stderr.rsplit("peak_rss_mib=", 1)[1].split()[0])
    return seconds, peak, stdout, stderr


def main() -> None:
    n = int(os.environ.get("BENCH_IMAGES", "10000"))
    threads = int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 1)))
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{n} images, {threads} threads, batch {BATCH}; model {MODEL.name}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        files = make_images(tmp / "images", n)
        with open(tmp / "records.jsonl", "w") as f:
            for i, p in enumerate(files):
                f.write(
                    json.dumps(
                        {"id": f"b{i}", "image": str(p), "grade": i % 5, "eye": "OD", "report": "benchmark record"}
                    )
                    + "\n"
                )
        # Warm the page cache and both runtimes once.
        python_encode(files[:64], threads)
        py_s, py_decode, py_codes = python_encode(files, threads)
        py_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        enc_s, enc_rss, enc_out, _ = run_measured(
            [
                str(BIN),
                "encode",
                "--encoder",
                str(MODEL),
                "--threads",
                str(threads),
                "--batch",
                str(BATCH),
                "--json",
                *map(str, files),
            ],
            env,
        )
        rust_codes = [json.loads(line)["code"] for line in enc_out.splitlines()]
        distances = [
            bin(int(bytes(c).hex(), 16) ^ int(r, 16)).count("1") for c, r in zip(py_codes, rust_codes, strict=True)
        ]
        agree = distances.count(0)

        config = ROOT / "schemas" / "examples" / "index.json"
        subprocess.run(
            [str(BIN), "init", str(tmp / "index"), "--schema", str(config)],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        ing_s, ing_rss, _, ing_err = run_measured(
            [
                str(BIN),
                "ingest",
                str(tmp / "index"),
                str(tmp / "records.jsonl"),
                "--threads",
                str(threads),
                "--batch",
                str(BATCH),
                "--quiet",
            ],
            env,
        )
    summary = next(line for line in ing_err.splitlines() if line.startswith("indexed="))
    rows = [
        ("python onnxruntime + Pillow", py_s, py_rss, 1.0),
        ("ash-search encode", enc_s, enc_rss, py_s / enc_s),
        ("ash-search ingest (index included)", ing_s, ing_rss, py_s / ing_s),
    ]
    print(
        "threads: Python decodes in its one thread and gives onnxruntime T intra-op threads; ash-search\n"
        "decodes on T rayon threads while ONNX Runtime (T intra-op threads) encodes the previous batch"
    )
    print(f"python: {py_decode:.2f} s of {py_s:.2f} s decoding and resizing, the rest inference")
    print(f"ash-search ingest: {summary}")
    print(
        f"codes equal to Python's: {agree} of {n}; the others differ in at most {max(distances)} bit(s) "
        "(the resize matches Pillow's; the JPEG decoders differ)"
    )
    print()
    print("| side | images/s | vs Python | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for name, secs, rss, ratio in rows:
        print(f"| {name} | {n / secs:.0f} | {ratio:.2f}x | {rss:.0f} |")


if __name__ == "__main__":
    main()
