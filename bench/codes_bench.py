"""`make bench`: the MIH engine side by side with FAISS and mih-rs.

One run, the same files and queries for every engine, one thread:
  * ash-search (exact MIH + cost model) and mih-rs 0.3.1: examples/bench_codes.rs;
  * FAISS IndexBinaryFlat (exact scan) and IndexBinaryMultiHash over a grid
    of (nhash, b, nflip): in this process.
Prints median ms/query, recall against the exact answer and ratios, with
the table last. BENCH_N sets the database size (default 1,000,000).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "ash-search"
EXAMPLE = ROOT / "target" / "release" / "examples" / "bench_codes"
KS = (1, 10, 100)
RADII = (2, 4, 8)
MULTIHASH_GRID = ((1, 16, 2), (2, 16, 2), (3, 16, 2), (3, 21, 1), (4, 16, 1), (4, 16, 2))


def generate(path: Path, n: int, spread: str, seed: int) -> np.ndarray:
    subprocess.run(
        [
            str(BIN),
            "codes",
            "generate",
            "--n",
            str(n),
            "--bits",
            "64",
            "--spread",
            spread,
            "--centres",
            "1000",
            "--flip",
            "0.08",
            "--centre-seed",
            "1",
            "--seed",
            str(seed),
            "--output",
            str(path),
        ],
        check=True,
    )
    return np.load(path)


def per_query(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[float, list]:
    """Median ms of fn over single queries, and the results."""
    times, results = [], []
    for i in range(len(queries)):
        q = queries[i : i + 1]
        t = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), results


def knn_recall(exact_d: list[int], got_d: np.ndarray, k: int) -> float:
    if not exact_d:
        return 1.0
    kth = exact_d[-1]
    good = min(int(np.sum((got_d >= 0) & (got_d <= kth))), len(exact_d))
    return good / min(len(exact_d), k)


def run_faiss(db: np.ndarray, q: np.ndarray, ours: dict) -> dict:
    out: dict = {}
    flat = faiss.IndexBinaryFlat(64)
    flat.add(db)
    for k in KS:
        ms, res = per_query(lambda x, k=k: flat.search(x, k), q)
        out[f"flat_knn{k}"] = {"median_ms": ms}
        if k == 10:
            exact = ours["knn10_distances"]
            mism = sum(1 for i, (d, _) in enumerate(res) if list(d[0][: len(exact[i])]) != exact[i])
            out["ours_knn10_mismatches_vs_flat"] = mism
    for ri, r in enumerate(RADII):
        # FAISS returns distances < radius.
        ms, res = per_query(lambda x, r=r: flat.range_search(x, r + 1), q)
        counts = [len(d) for (_, d, _) in res]
        out[f"flat_range{r}"] = {"median_ms": ms}
        out[f"ours_range{r}_mismatches_vs_flat"] = sum(
            1 for a, b in zip(counts, ours["range_counts"][ri], strict=True) if a != b
        )
    grid = []
    for nhash, b, nflip in MULTIHASH_GRID:
        t = time.perf_counter()
        mh = faiss.IndexBinaryMultiHash(64, nhash, b)
        mh.add(db)
        build_s = time.perf_counter() - t
        mh.nflip = nflip
        ms, res = per_query(lambda x, mh=mh: mh.search(x, 10), q)
        exact = ours["knn10_distances"]
        recall = float(np.mean([knn_recall(exact[i], d[0], 10) for i, (d, _) in enumerate(res)]))
        grid.append({"nhash": nhash, "b": b, "nflip": nflip, "median_ms": ms, "recall": recall, "build_s": build_s})
        del mh
    out["multihash_knn10"] = grid
    return out


def main() -> int:
    n = int(os.environ.get("BENCH_N", "1000000"))
    nq = int(os.environ.get("BENCH_QUERIES", "1000"))
    faiss.omp_set_num_threads(1)
    report = {
        "n": n,
        "queries": nq,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "cpu": cpu_model(),
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="ash-bench-") as tmp:
        work = Path(tmp)
        for spread in ("clustered", "uniform"):
            db = generate(work / "db.npy", n, spread, seed=2)
            q = generate(work / "q.npy", nq, spread, seed=3)
            subprocess.run(
                [str(EXAMPLE), str(work / "db.npy"), str(work / "q.npy"), str(work / "rust.json"), str(work)],
                check=True,
            )
            rust = json.loads((work / "rust.json").read_text())
            rust["faiss"] = run_faiss(db, q, rust["ours"])
            report["datasets"][spread] = rust
    out = ROOT / "target" / "bench-codes.json"
    out.write_text(json.dumps(report, indent=1))
    print_table(report)
    print(f"\nraw results: {out}")
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def print_table(report: dict) -> None:
    print(
        f"\n# codes benchmark: n={report['n']:,}, {report['queries']} queries, 64-bit, "
        f"1 thread, median ms/query ({report['cpu']})\n"
    )
    for name, ds in report["datasets"].items():
        ours, theirs, fa = ds["ours"], ds["mih_rs"], ds["faiss"]
        print(f"## {name} (ash-search m={ours['substrings']}, mih-rs m={theirs['substrings']})\n")
        print("| query | ash-search | mih-rs (recall) | FAISS flat | vs mih-rs | vs flat | scan share |")
        print("|---|---|---|---|---|---|---|")
        for key in [f"knn{k}" for k in KS] + [f"range{r}" for r in RADII]:
            o = ours["results"][key]
            t = theirs["results"][key]
            f = fa[f"flat_{key}"]
            share = o.get("scan_share")
            print(
                f"| {key} | {o['median_ms']:.4f} | {t['median_ms']:.4f} ({t['recall']:.3f}) | "
                f"{f['median_ms']:.3f} | {t['median_ms'] / o['median_ms']:.1f}x | "
                f"{f['median_ms'] / o['median_ms']:.1f}x | "
                f"{'' if share is None else f'{share:.2f}'} |"
            )
        exact = [g for g in fa["multihash_knn10"] if g["recall"] >= 0.9999]
        fastest = min(fa["multihash_knn10"], key=lambda g: g["median_ms"])
        best = min(exact, key=lambda g: g["median_ms"]) if exact else None
        print()
        print(
            "FAISS IndexBinaryMultiHash k=10 grid (nhash, b, nflip: ms, recall, build s): "
            + "; ".join(
                f"({g['nhash']},{g['b']},{g['nflip']}): {g['median_ms']:.3f}, {g['recall']:.3f}, {g['build_s']:.1f}"
                for g in fa["multihash_knn10"]
            )
        )
        if best:
            print(
                f"best exact MultiHash k=10: {best['median_ms']:.3f} ms "
                f"({best['median_ms'] / ours['results']['knn10']['median_ms']:.1f}x ash-search)"
            )
        print(f"fastest MultiHash k=10: {fastest['median_ms']:.3f} ms at recall {fastest['recall']:.3f}")
        print(
            f"ash-search exactness vs FAISS flat: knn10 mismatching queries "
            f"{fa['ours_knn10_mismatches_vs_flat']}, range mismatches "
            f"{[fa[f'ours_range{r}_mismatches_vs_flat'] for r in RADII]}"
        )
        print(
            f"build: ash-search {ours['build_s']:.2f} s ({ours['build_codes_per_s'] / 1e6:.1f} M codes/s), "
            f"mih-rs {theirs['build_s']:.2f} s; ash-search index {ours['index_bytes'] / 1e6:.1f} MB = "
            f"{ours['extra_bytes_per_code']:.2f} bytes/code beyond the codes; open {ours['open_ms']:.3f} ms\n"
        )


if __name__ == "__main__":
    sys.exit(main())
