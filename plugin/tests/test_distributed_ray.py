"""``ash.distributed`` on a real local Ray cluster (``ray.init(num_cpus=2)``)
with the real ``ash-search`` binary: 2,000 photographs (synthetic fundus
images of several sizes as PNG and JPEG, plus the real CC0 photographs),
every code compared with ``ash-search encode`` run alone; a worker killed by
its pid mid-shard; a restarted job; broken images and entries.

Needs the release binary (``cargo build --release``; ``make test`` builds it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pytest

from ash.distributed import EncoderError, JobOptions, JobReport, run_job, runtime_env
from ash.synthetic import dataset, fundus

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "ash-search"
ENCODER = ROOT / "plugin" / "models" / "ash-synfundus-48"
REAL = ROOT / "tests" / "fixtures" / "cc0"
N_IMAGES = 2000


def _render(job: tuple[int, int, int, int, str]) -> None:
    grade, scene, size, _, path = job
    image = fundus(grade, scene, size=size)
    if path.endswith(".jpg"):
        image.save(path, quality=90)
    else:
        image.save(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: build it with `cargo build --release` (or run `make test`)")
    folder = tmp_path_factory.mktemp("archive") / "images"
    folder.mkdir()
    real = sorted(p for p in REAL.iterdir() if p.suffix in (".jpg", ".png"))
    assert len(real) >= 2, f"the CC0 photographs are missing from {REAL}"
    for p in real:
        shutil.copyfile(p, folder / f"real-{p.name}")
    rng = np.random.default_rng(7)
    n = N_IMAGES - len(real)
    jobs = [
        (g, s, int(rng.choice([96, 128, 160])), i, str(folder / f"syn-{i:04d}.{'jpg' if i % 2 else 'png'}"))
        for i, (g, s) in enumerate(dataset(n, seed=21, size=128))
    ]
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(_render, jobs, chunksize=50)
    return folder


@pytest.fixture(scope="module")
def reference(images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Code per resolved path, from one `ash-search encode` over every file."""
    listing = tmp_path_factory.mktemp("ref") / "files.txt"
    files = sorted(str(p.resolve()) for p in images.iterdir())
    listing.write_text("\n".join(files) + "\n")
    out = subprocess.run(
        [BINARY, "encode", "--json", "--encoder", ENCODER, "--device", "cpu", "--files-from", listing],
        capture_output=True,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(lines) == N_IMAGES and all("code" in v for v in lines)
    return {v["file"]: v["code"] for v in lines}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False)
    yield
    ray.shutdown()


def read_shards(out: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for p in sorted(out.glob(pattern)) for line in p.read_text().splitlines()]


def options(sources: list[Path], out: Path, **kw: object) -> JobOptions:
    return JobOptions(sources=sources, out=out, encoder=ENCODER, binary=str(BINARY), progress=False, **kw)  # type: ignore[arg-type]


def check_complete(out: Path, images: Path, reference: dict[str, str]) -> None:
    records = read_shards(out, "codes-*.jsonl")
    ids = [r["id"] for r in records]
    assert len(ids) == N_IMAGES, f"{len(ids)} records for {N_IMAGES} images"
    assert len(set(ids)) == N_IMAGES, "an image was written twice"
    for r in records:
        path = next(images.glob(f"{r['id']}.*")).resolve()
        assert r["code"] == reference[str(path)], f"{r['id']}: the job and `ash-search encode` disagree"
    assert read_shards(out, "errors-[0-9]*.jsonl") == []


def test_every_code_equals_ash_search_encode_and_the_shards_index(
    cluster: None, images: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "codes"
    report = run_job(options([images], out, shard_size=250))
    assert (report.shards, report.encoded_shards, report.codes, report.image_errors) == (8, 8, N_IMAGES, 0)
    assert len(report.workers) == 2, f"both workers took shards: {report.workers}"
    check_complete(out, images, reference)

    config = json.loads((ROOT / "schemas" / "examples" / "index.json").read_text())
    config["hash"]["encoder"] = str(ENCODER)
    (tmp_path / "config.json").write_text(json.dumps(config))
    index = tmp_path / "index"
    run = [BINARY, "init", index, "--schema", tmp_path / "config.json"]
    subprocess.run(run, check=True, capture_output=True)
    shards = sorted(out.glob("codes-*.jsonl"))
    ingest = subprocess.run([BINARY, "ingest", index, *shards, "--quiet"], capture_output=True, check=False)
    assert ingest.returncode == 0, ingest.stderr.decode()
    assert "indexed=2000 " in ingest.stderr.decode()
    some = read_shards(out, "codes-00003.jsonl")[17]
    hits = subprocess.run(
        [BINARY, "search", index, "--json", "--like", some["id"], "--k", "3"], capture_output=True, check=True
    )
    assert all(h["distance"] == 0 for h in json.loads(hits.stdout)["hits"][:1])


def ray_worker_running_a_shard(encoder: Path, deadline: float) -> tuple[int, int, int, Path]:
    """(worker pid, encoder pid, shard, the shard's list folder) of a Ray
    worker running ``encoder`` (this test's own, so that no other job on the
    machine is touched)."""
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parent_argv = Path(f"/proc/{parent}/cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            listing = next((a.decode() for a in argv if b"ash-shard-" in a), None)
            ours = str(encoder).encode() in argv
            if ours and listing and parent_argv.startswith(b"ray::encode_shard"):
                shard = int(listing.split("ash-shard-")[1][:5])
                return parent, int(proc.name), shard, Path(listing).parent
        time.sleep(0.02)
    raise AssertionError("no Ray worker was seen encoding a shard")


def test_a_worker_killed_mid_shard_is_retried_and_the_output_is_complete(
    cluster: None, images: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    # The real binary, started half a second late, so that the kill below
    # lands while a shard is being encoded (not between two shards); the
    # wrapper's path in the command line marks this test's own workers.
    slow = tmp_path / "ash-search-slow"
    slow.write_text(f'#!/bin/sh\nsleep 0.5\nexec "{BINARY}" "$@"\n')
    slow.chmod(0o755)
    out = tmp_path / "codes"
    killed: dict[str, int] = {}

    def killer() -> None:
        worker, encoder, shard, listing = ray_worker_running_a_shard(slow, time.monotonic() + 60)
        os.kill(worker, signal.SIGKILL)
        killed.update(worker=worker, encoder=encoder, shard=shard)
        # The killed worker could not remove its temporary list; this does.
        time.sleep(0.5)
        shutil.rmtree(listing, ignore_errors=True)

    thread = threading.Thread(target=killer)
    thread.start()
    opts = options([images], out, shard_size=200)
    opts.binary = str(slow)
    report: JobReport = run_job(opts)
    thread.join()
    assert killed, "the killer found no worker"
    assert report.encoded_shards == 10
    assert report.pids[killed["shard"]] != killed["worker"], "the killed worker's shard was redone elsewhere"
    check_complete(out, images, reference)
    # The encoder under the killed worker died with it.
    for _ in range(100):
        state = Path(f"/proc/{killed['encoder']}/stat")
        if not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the killed worker's encoder is still running")


def test_a_restarted_job_does_only_the_unfinished_shards(
    cluster: None, images: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "codes"
    first = run_job(options([images], out, shard_size=400))
    assert first.encoded_shards == 5
    before = {p.name: p.read_bytes() for p in out.glob("*-0000*.jsonl")}
    # A crash after two shards: their files are gone, a half-written one is left.
    (out / "codes-00001.jsonl").unlink()
    (out / "codes-00004.jsonl").unlink()
    (out / ".codes-00004.jsonl.x1y2.tmp").write_text('{"id": "half')
    again = run_job(options([images], out, shard_size=400))
    assert (again.skipped_shards, again.encoded_shards, again.codes) == (3, 2, N_IMAGES)
    assert {p.name: p.read_bytes() for p in out.glob("*-0000*.jsonl")} == before
    assert not list(out.glob(".*.tmp"))
    check_complete(out, images, reference)


def test_broken_images_and_entries_become_error_records(cluster: None, images: Path, tmp_path: Path) -> None:
    good = sorted(images.glob("syn-000*.jpg"))[:3]
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[0].read_bytes()[:2000])
    text = tmp_path / "text.png"
    text.write_text("not an image")
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"id": "ok-0", "image": str(good[0]), "grade": 3},
        {"id": "cut", "image": "cut.jpg"},
        {"id": "gone", "image": "nowhere.png"},
        {"id": "text", "image": "text.png"},
        {"id": "ok-0", "image": str(good[1])},
        {"id": "coded", "code": "0123456789ab", "grade": 1},
        {"id": "ok-2", "image": str(good[2])},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    out = tmp_path / "codes"
    report = run_job(options([manifest], out, shard_size=3))
    records = read_shards(out, "codes-*.jsonl")
    assert [r["id"] for r in records] == ["ok-0", "coded", "ok-2"]
    assert records[0]["grade"] == 3 and records[1] == {"id": "coded", "code": "0123456789ab", "grade": 1}
    errors = {e["id"]: e for e in read_shards(out, "errors-[0-9]*.jsonl")}
    assert set(errors) == {"cut", "gone", "text"}
    assert all(e["input"] == str(manifest) for e in errors.values())
    assert (errors["cut"]["line"], errors["gone"]["line"], errors["text"]["line"]) == (2, 3, 4)
    assert "truncated" in errors["cut"]["reason"].lower(), errors["cut"]["reason"]
    assert "nowhere.png" in errors["gone"]["reason"]
    source_errors = read_shards(out, "errors-source.jsonl")
    assert [(e["line"], e["id"]) for e in source_errors] == [(5, "ok-0"), (8, None)]
    assert (report.image_errors, report.source_errors) == (3, 2)


def test_an_encoder_that_cannot_run_stops_the_job_with_its_reason(cluster: None, images: Path, tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="CUDA"):
        run_job(options([images], tmp_path / "codes", shard_size=500, device="cuda"))
    assert not list((tmp_path / "codes").glob("codes-*.jsonl"))


def test_the_command_line_runs_a_job_and_says_how_it_went(images: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    good = sorted(images.glob("syn-00*.png"))[:4]
    manifest.write_text("image,id,grade\n" + "".join(f"{p},c{i},{i}\n" for i, p in enumerate(good)) + "gone.png,x,1\n")
    index = tmp_path / "index.json"
    config = json.loads((ROOT / "schemas" / "examples" / "index.json").read_text())
    index.write_text(json.dumps(config))
    out = tmp_path / "codes"
    cli = [sys.executable, "-m", "ash.distributed", str(manifest), "--encoder", str(ENCODER)]
    run = subprocess.run(
        [*cli, "--out", str(out), "--index", str(index), "--num-cpus", "1", "--binary", str(BINARY), "--quiet"],
        capture_output=True,
        cwd=ROOT / "plugin",
        check=False,
    )
    stderr = run.stderr.decode()
    assert run.returncode == 1, stderr
    assert "shards=1 skipped=0 encoded=1 images=5 codes=4 image_errors=1" in stderr, stderr
    records = read_shards(out, "codes-*.jsonl")
    assert [(r["id"], r["grade"]) for r in records] == [("c0", 0), ("c1", 1), ("c2", 2), ("c3", 3)], "typed"

    config["hash"]["bits"] = 24
    index.write_text(json.dumps(config))
    run = subprocess.run(
        [*cli, "--out", str(tmp_path / "other"), "--index", str(index), "--num-cpus", "1", "--quiet"],
        capture_output=True,
        cwd=ROOT / "plugin",
        check=False,
    )
    assert run.returncode == 2, run.stderr.decode()
    assert "48-bit codes, the index holds 24-bit" in run.stderr.decode()
