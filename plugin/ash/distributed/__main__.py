"""``python -m ash.distributed SOURCE... --encoder DIR --out DIR``: encode an
image archive on a Ray cluster into code shards for ``ash-search ingest``.

Exit codes: 0 every image encoded; 1 some images or entries were refused
(see the ``errors-*.jsonl`` files) or some shards are unfinished (run again);
2 the job could not run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DistributedError, UnfinishedShardsError
from .job import JobOptions, run_job


def parse(argv: list[str] | None) -> JobOptions:
    p = argparse.ArgumentParser(prog="python -m ash.distributed", description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", type=Path, help="image folders, .csv or .jsonl manifests")
    p.add_argument("--encoder", type=Path, required=True, help="encoder plugin folder (manifest.json + model.onnx)")
    p.add_argument("--out", type=Path, required=True, help="output folder (job.json, codes-*.jsonl, errors-*.jsonl)")
    p.add_argument("--metadata", type=Path, help="CSV of metadata for folder sources, keyed by its `file` column")
    p.add_argument("--index", type=Path, help="the index the codes are for: types CSV cells, checks the bits")
    p.add_argument("--shard-size", type=int, default=500, help="images per shard (default 500)")
    p.add_argument("--binary", help="ash-search binary on the workers (default: PATH, then target/release)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local cluster (default: all)")
    p.add_argument("--cpus-per-task", type=int, default=1, help="CPUs (and encoder threads) per shard task")
    p.add_argument("--gpus-per-task", type=float, help="GPUs per shard task (default: 1 when the cluster has GPUs)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], help="execution provider (default: cuda with GPUs)")
    p.add_argument("--batch", type=int, default=32, help="images per inference batch")
    p.add_argument("--max-retries", type=int, default=3, help="retries of a shard whose worker died")
    p.add_argument("--no-ship-code", action="store_true", help="workers import ash.distributed themselves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if a.shard_size < 1 or a.cpus_per_task < 1:
        p.error("--shard-size and --cpus-per-task must be at least 1")
    return JobOptions(
        sources=a.sources,
        out=a.out,
        encoder=a.encoder,
        metadata=a.metadata,
        index=a.index,
        shard_size=a.shard_size,
        binary=a.binary,
        cpus_per_task=a.cpus_per_task,
        gpus_per_task=a.gpus_per_task,
        device=a.device,
        batch=a.batch,
        max_retries=a.max_retries,
        progress=not a.quiet,
        address=a.address,
        num_cpus=a.num_cpus,
        ship_code=not a.no_ship_code,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    import ray

    try:
        report = run_job(options)
    except UnfinishedShardsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        ray.shutdown()
    print(report.summary(), file=sys.stderr)
    return 1 if report.image_errors or report.source_errors else 0


if __name__ == "__main__":
    sys.exit(main())
