"""`make bench`: encoding on Ray (`ash.distributed`) against `ash-search`
alone on the same files, then the index step two ways.

One run, the shipped ash-synfundus-48 model, BENCH_RAY_IMAGES JPEG files
(default 4,000; copies of 100 distinct 384 x 384 synthetic photographs):
  * `ash-search encode` alone, 1 thread (decode and inference on one core);
  * Ray, 1 worker (`ray.init(num_cpus=1)`), shards of 500, 1 thread each;
  * `ash-search encode` and `ash-search ingest` alone, 2 threads;
  * Ray, 2 workers;
  * Ray's overhead per image = (Ray 1 worker - encode alone 1 thread) / N;
  * the Python path (Pillow + onnxruntime): how many codes equal the binary's;
  * the index step, BENCH_RAY_RECORDS code records (default 1,000,000) in
    100 shard files: one `ash-search ingest` of every shard, against two
    ingests of half the shards each into two indexes at once (the
    "index per shard, then merge" plan, before any merge);
  * the per-image cost of a real 1411 x 1411 CC0 photograph, for the
    paper estimate printed last.
Job times exclude starting the local cluster, which is printed apart.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))
sys.path.insert(0, str(ROOT / "bench"))
import ray  # noqa: E402
from ash.distributed import JobOptions, run_job, runtime_env  # noqa: E402
from encode_bench import BIN, MODEL, make_images, python_encode  # noqa: E402

REAL = ROOT / "tests" / "fixtures" / "cc0" / "retina.jpg"


def timed(cmd: list[str], threads: int) -> tuple[float, str]:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{proc.stderr.decode()}")
    return seconds, proc.stderr.decode()


def encode_alone(listing: Path, threads: int) -> float:
    cmd = [str(BIN), "encode", "--json", "--encoder", str(MODEL), "--device", "cpu"]
    return timed([*cmd, "--threads", str(threads), "--files-from", str(listing)], threads)[0]


def ray_job(files_dir: Path, out: Path, workers: int) -> tuple[float, float, float]:
    """(cluster start, first job, second job) seconds: the first job starts
    the workers and unpacks the package on them, the second finds them warm."""
    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False)
    start = time.perf_counter() - t
    jobs = []
    try:
        for attempt in ("cold", "warm"):
            options = JobOptions(
                sources=[files_dir],
                out=out / attempt,
                encoder=MODEL,
                binary=str(BIN),
                shard_size=500,
                progress=False,
            )
            t = time.perf_counter()
            report = run_job(options)
            jobs.append(time.perf_counter() - t)
            assert report.image_errors == 0 and report.encoded_shards == report.shards
    finally:
        ray.shutdown()
    return start, jobs[0], jobs[1]


def init_index(path: Path) -> None:
    config = ROOT / "schemas" / "examples" / "index.json"
    subprocess.run([str(BIN), "init", str(path), "--schema", str(config)], check=True, capture_output=True, cwd=ROOT)


def index_step(tmp: Path, codes: list[str], n: int) -> tuple[float, float]:
    """(one ingest of all shards, two concurrent ingests of half each) seconds."""
    shards = tmp / "many"
    shards.mkdir()
    per = n // 100
    paths = []
    for s in range(100):
        path = shards / f"codes-{s:05d}.jsonl"
        with path.open("w") as f:
            for i in range(s * per, (s + 1) * per):
                f.write(json.dumps({"id": f"r{i}", "code": codes[i % len(codes)], "grade": i % 5}) + "\n")
        paths.append(str(path))
    init_index(tmp / "one")
    one, _ = timed([str(BIN), "ingest", str(tmp / "one"), *paths, "--quiet"], 2)
    init_index(tmp / "a")
    init_index(tmp / "b")
    started = time.perf_counter()
    procs = [
        subprocess.Popen([str(BIN), "ingest", str(tmp / name), *half, "--quiet"], stderr=subprocess.DEVNULL)
        for name, half in (("a", paths[:50]), ("b", paths[50:]))
    ]
    assert all(p.wait() == 0 for p in procs)
    return one, time.perf_counter() - started


def main() -> None:
    n = int(os.environ.get("BENCH_RAY_IMAGES", "4000"))
    records = int(os.environ.get("BENCH_RAY_RECORDS", "1000000"))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; ray {ray.__version__}; "
        f"{n} images; model {MODEL.name}"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "images").mkdir()
        files = make_images(tmp / "images", n)
        for p in (tmp / "images").glob("src-*"):
            p.unlink()  # the 100 originals stay out of the job
        listing = tmp / "files.txt"
        listing.write_text("".join(f"{p}\n" for p in files))
        with open(tmp / "records.jsonl", "w") as f:
            for i, p in enumerate(files):
                f.write(json.dumps({"id": f"b{i}", "image": str(p), "grade": i % 5}) + "\n")
        encode_alone(listing, 1)  # page cache and runtime warm

        enc1 = encode_alone(listing, 1)
        start1, cold1, ray1 = ray_job(tmp / "images", tmp / "ray1", 1)
        enc2 = encode_alone(listing, 2)
        init_index(tmp / "index")
        cmd = [str(BIN), "ingest", str(tmp / "index"), str(tmp / "records.jsonl"), "--threads", "2", "--quiet"]
        ing2, ing_err = timed(cmd, 2)
        start2, cold2, ray2 = ray_job(tmp / "images", tmp / "ray2", 2)

        ray_codes = {
            json.loads(line)["id"]: json.loads(line)["code"]
            for p in sorted((tmp / "ray2" / "warm").glob("codes-*.jsonl"))
            for line in p.read_text().splitlines()
        }
        out = subprocess.run(
            [str(BIN), "encode", "--json", "--encoder", str(MODEL), "--files-from", str(listing)],
            capture_output=True,
            check=True,
        )
        binary_codes = [json.loads(line)["code"] for line in out.stdout.decode().splitlines()]
        same_as_binary = sum(ray_codes[Path(p).stem] == c for p, c in zip(files, binary_codes, strict=True))
        _, _, py_codes = python_encode(files, 2)
        python_equal = sum(bytes(c).hex() == r for c, r in zip(py_codes, binary_codes, strict=True))

        one, two = index_step(tmp, list(ray_codes.values()), records)

        real_dir = tmp / "real"
        real_dir.mkdir()
        real_files = []
        for i in range(200):
            real_files.append(real_dir / f"r{i}.jpg")
            shutil.copyfile(REAL, real_files[-1])
        real_list = tmp / "real.txt"
        real_list.write_text("".join(f"{p}\n" for p in real_files))
        real1 = encode_alone(real_list, 1) / len(real_files)

    summary = next(line for line in ing_err.splitlines() if line.startswith("indexed="))
    decode_cpu = float(summary.split("decode_cpu_s=")[1].split()[0]) / n
    rows = [
        ("`ash-search encode` alone, 1 thread", enc1, enc1),
        ("Ray, 1 worker (1 CPU), first job (starts the worker)", cold1, enc1),
        ("Ray, 1 worker (1 CPU), second job", ray1, enc1),
        ("`ash-search encode` alone, 2 threads", enc2, enc2),
        ("`ash-search ingest` alone, 2 threads (index included)", ing2, ing2),
        ("Ray, 2 workers, first job", cold2, ing2),
        ("Ray, 2 workers, second job", ray2, ing2),
    ]
    print("| side | seconds | images/s |")
    print("|---|---|---|")
    for name, secs, _ in rows:
        print(f"| {name} | {secs:.2f} | {n / secs:,.0f} |")
    print(f"Ray cluster start (not in the job times): {start1:.1f} s with 1 CPU, {start2:.1f} s with 2")
    print(f"Ray 2 workers (second job) vs ingest alone: {ing2 / ray2:.2f}x; vs 1 worker: {ray1 / ray2:.2f}x")
    print(
        f"Ray's overhead per image (1 worker, second job, vs encode alone, 1 thread): "
        f"{(ray1 - enc1) / n * 1e3:.3f} ms; "
        f"starting the worker in the first job: {cold1 - ray1:.1f} s"
    )
    print(f"codes: Ray = ash-search encode for {same_as_binary} of {n}; Python path = binary for {python_equal} of {n}")
    print(
        f"index step, {records:,} code records in 100 shards: one ingest {one:.2f} s ({records / one:,.0f} docs/s); "
        f"two ingests of 50 shards at once {two:.2f} s ({one / two:.2f}x, before any merge)"
    )
    print(
        f"per image, 1 thread: synthetic 384 px JPEG {enc1 / n * 1e3:.2f} ms "
        f"(decode {decode_cpu * 1e3:.2f} ms of CPU in ingest); real 1411 x 1411 JPEG {real1 * 1e3:.2f} ms"
    )
    for nodes in (1, 8, 32):
        per_node = 16 / real1
        hours = 10_000_000 / (nodes * per_node) / 3600
        line = f"estimate, 10M real-size photographs, {nodes} x 16-core node(s): {hours:.1f} h"
        print(f"{line} ({per_node:,.0f} img/s per node)")


if __name__ == "__main__":
    main()
