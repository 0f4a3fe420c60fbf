"""`make bench`: search served over shards by Ray (`ash.serve`) against one
process, on the same codes and the same queries, in one run.

BENCH_SHARD_N code records (default 200,000; 48-bit clustered codes with a
grade and an eye) go into one index and into sharded indexes of 1, 2 and 4
shards. Then, for BENCH_SHARD_SECONDS each (default 5) with
BENCH_SHARD_CLIENTS client threads (default 4), k=10 code queries through:
  * `ash_search.Index.search` in this process (the library alone), also
    from 1 and 2 threads: searches release the GIL, so threads scale;
  * `ash-search serve` over HTTP (the single-process server);
  * `ash.serve.ShardedSearch` with 1, 2 and 4 shards, one replica each, on a
    local Ray cluster (`ray.init(num_cpus=2)`, this machine's cores).
Prints requests/s and p50/p99 latency per row, and each row's ratio to the
server (the fan-out's cost, or gain, against one process).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))
import ash_search  # noqa: E402
import ray  # noqa: E402
from ash.serve import ShardedSearch, create, ingest, runtime_env  # noqa: E402

BIN = ROOT / "target" / "release" / "ash-search"
N = int(os.environ.get("BENCH_SHARD_N", "200000"))
SECONDS = float(os.environ.get("BENCH_SHARD_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_SHARD_CLIENTS", "4"))
SCHEMA = {
    "fields": [
        {"name": "id", "type": "keyword", "stored": True},
        {"name": "eye", "type": "keyword", "stored": True},
        {"name": "grade", "type": "integer", "stored": True, "fast": True},
    ],
    "hash": {"name": "code", "bits": 48},
}


def records(n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(1)
    centres = rng.integers(0, 256, (1000, 6), dtype=np.uint8)
    codes = centres[rng.integers(0, 1000, n)] ^ np.packbits(rng.random((n, 48)) < 0.05, axis=1)
    return [{"id": f"d{i:08d}", "eye": "OD" if i % 2 else "OS", "grade": i % 5, "code": c} for i, c in enumerate(codes)]


def drive(search: Callable[[str], object], queries: list[str], clients: int = CLIENTS) -> dict[str, float]:
    """``clients`` threads searching for SECONDS; requests/s, p50 and p99 ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + SECONDS

    def client(c: int) -> None:
        i = c
        while time.monotonic() < stop:
            t = time.perf_counter()
            search(queries[i % len(queries)])
            latencies[c].append(time.perf_counter() - t)
            i += clients

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ms = np.array([x for row in latencies for x in row]) * 1e3
    return {
        "rps": len(all_ms) / SECONDS,
        "p50_ms": float(np.percentile(all_ms, 50)),
        "p99_ms": float(np.percentile(all_ms, 99)),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_row(index: Path, queries: list[str]) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "serve", str(index), "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/search"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)

        def search(code: str) -> object:
            body = json.dumps({"code": code, "k": 10}).encode()
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.read()

        return drive(search, queries)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    if not BIN.is_file():
        raise SystemExit(f"{BIN} is missing: make build")
    machine = platform.processor() or platform.machine()
    print(f"shard bench: {N:,} codes, {CLIENTS} clients, {SECONDS:g} s a row, {os.cpu_count()} cores, {machine}")
    docs = records(N)
    rng = np.random.default_rng(2)
    queries = [q.tobytes().hex() for q in rng.integers(0, 256, (2000, 6), dtype=np.uint8)]
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        single_path = Path(tmp) / "single"
        single = ash_search.Index.create(single_path, SCHEMA)
        single.ingest(docs, commit_every=N)
        # The GIL is released during a search: threads scale with cores.
        for clients in (1, 2):
            rows[f"library, {clients} thread(s)"] = drive(lambda q: single.search(code=q, k=10), queries, clients)
        rows["library, in process"] = drive(lambda q: single.search(code=q, k=10), queries)
        rows["ash-search serve (HTTP)"] = server_row(single_path, queries)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
        try:
            for shards in (1, 2, 4):
                layout = create(Path(tmp) / f"s{shards}", SCHEMA, shards)
                ingest(layout, docs, block=N)
                front = ShardedSearch(layout.root, replicas=1, cpus_per_replica=0.25)
                # Every shard's answer equals the single index's (checked on a sample).
                for q in queries[:50]:
                    a = [h.distance for h in front.search(q, k=10)]
                    assert a == [h.distance for h in single.search(code=q, k=10)]
                rows[f"ash.serve, {shards} shard(s)"] = drive(lambda q, f=front: f.search(q, k=10), queries)
                front.close()
        finally:
            ray.shutdown()
    server = rows["ash-search serve (HTTP)"]["rps"]
    print(f"{'path':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs serve':>9}")
    for name, r in rows.items():
        print(f"{name:<28} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['rps'] / server:>8.2f}x")


if __name__ == "__main__":
    main()
