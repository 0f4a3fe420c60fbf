"""Speed of the code engine and the index at two revisions, side by side.

    python3 bench/compare_revisions.py BASE_REV [--n 1000000] [--rounds 2]

Builds `bench_codes`, `bench_index` and `ash-search` (release) at BASE_REV
(in a temporary git worktree, built into `target/compare-base`, which is
kept for the next comparison) and at the working tree, then runs both builds on
the same codes and queries, alternating, `--rounds` times. Prints, for each
figure, the median over rounds at each revision and the ratio
working tree / base (below 1: the working tree is faster). For refactors
that must leave speed alone. Needs only the Python standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target"
# The base has a target directory of its own: cargo names a workspace
# crate's artefacts without its path, so two checkouts sharing one would
# take each other's crates for fresh.
BASE_TARGET = TARGET / "compare-base"
EXAMPLES = ("bench_codes", "bench_index")


def build(tree: Path, target: Path, out: Path) -> None:
    """Builds the benchmark binaries of `tree` into `target` and copies them into `out`."""
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--bin", "ash-search"]
        + [a for e in EXAMPLES for a in ("--example", e)],
        cwd=tree,
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target / "release" / "ash-search", out / "ash-search")
    for e in EXAMPLES:
        shutil.copy2(target / "release" / "examples" / e, out / e)


def flatten(prefix: str, value: object, into: dict[str, float]) -> None:
    """Timing figures (keys ending in `_ms` or `_per_s`) of a JSON report."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, into)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            key = f"{prefix}[{v.get('selectivity_pct', i)}%]" if isinstance(v, dict) else f"{prefix}[{i}]"
            if isinstance(v, dict):
                flatten(key, v, into)
    elif isinstance(value, (int, float)) and (prefix.endswith("_ms") or prefix.endswith("_per_s")):
        into[prefix] = float(value)


def run_codes(bins: Path, work: Path) -> dict[str, float]:
    out = work / f"codes-{bins.name}.json"
    subprocess.run(
        [str(bins / "bench_codes"), str(work / "db.npy"), str(work / "q.npy"), str(out), str(work)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    figures: dict[str, float] = {}
    report = json.loads(out.read_text())
    flatten(
        "codes", {"ours": report["ours"]["results"], "build_codes_per_s": report["ours"]["build_codes_per_s"]}, figures
    )
    return figures


def run_index(bins: Path, n: int) -> dict[str, float]:
    subprocess.run([str(bins / "bench_index"), str(n), "200"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    figures: dict[str, float] = {}
    flatten("index", json.loads((TARGET / "bench-index.json").read_text()), figures)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ash-compare-") as tmp:
        work = Path(tmp)
        tree = work / "base-tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.base], cwd=ROOT, check=True)
        try:
            build(tree, BASE_TARGET, work / "base")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)
        build(ROOT, TARGET, work / "head")
        for name, seed in (("db", 2), ("q", 3)):
            subprocess.run(
                [
                    str(work / "head" / "ash-search"),
                    "codes",
                    "generate",
                    "--n",
                    str(args.n if name == "db" else 1000),
                    "--bits",
                    "64",
                    "--centres",
                    "1000",
                    "--flip",
                    "0.08",
                    "--centre-seed",
                    "1",
                    "--seed",
                    str(seed),
                    "--output",
                    str(work / f"{name}.npy"),
                ],
                check=True,
            )
        runs: dict[str, dict[str, list[float]]] = {"base": {}, "head": {}}
        for r in range(args.rounds):
            for which in ("base", "head") if r % 2 == 0 else ("head", "base"):
                bins = work / which
                for key, value in {**run_codes(bins, work), **run_index(bins, args.n)}.items():
                    runs[which].setdefault(key, []).append(value)
                print(f"round {r + 1}: {which} done", flush=True)
        print(f"\n| figure | base {args.base} | working tree | working tree / base |\n|---|---|---|---|")
        for key in sorted(runs["head"]):
            if key not in runs["base"]:
                continue
            b, h = statistics.median(runs["base"][key]), statistics.median(runs["head"][key])
            print(f"| {key} | {b:.4g} | {h:.4g} | {h / b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
