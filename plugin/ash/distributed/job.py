"""The driver: read the source, cut it into shards, encode the shards on
Ray workers, write each finished shard once.

Workers only read images and run ``ash-search encode``; the driver writes
every output file, so workers need no shared output folder and a shard is
written by one process, whole, whatever Ray retried. Ray retries a shard
whose worker died (``max_retries``) or whose encoder died from a signal;
a shard that still fails is reported and left for the next run, which
skips the shards already written. At most ``in_flight`` shards are
submitted at once, so the driver's memory follows the cluster's width,
not the archive's size.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EncoderError, ShardCrashedError, SourceError, UnfinishedShardsError
from .shards import Output, Shard, plan
from .source import field_kinds, read_sources
from .worker import EncoderSettings, ShardResult, encode_shard, encoder_identity, find_binary

PACKAGE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class JobOptions:
    """One encoding job. ``gpus_per_task=None``: one GPU per task when the
    cluster has GPUs, else none; ``device=None``: CUDA with GPUs, else CPU.
    ``address``, ``num_cpus`` and ``ship_code`` are used only when this
    process is not connected to Ray yet (``address=None``: ``RAY_ADDRESS``,
    else a local cluster of ``num_cpus``)."""

    sources: list[Path]
    out: Path
    encoder: Path
    metadata: Path | None = None
    index: Path | None = None
    shard_size: int = 500
    binary: str | None = None
    cpus_per_task: int = 1
    gpus_per_task: float | None = None
    device: str | None = None
    batch: int = 32
    max_retries: int = 3
    progress: bool = True
    address: str | None = None
    num_cpus: int | None = None
    ship_code: bool = True


@dataclass
class JobReport:
    """What a run did; ``workers`` counts shards per ``host:pid``."""

    shards: int
    skipped_shards: int
    encoded_shards: int
    images: int
    codes: int
    image_errors: int
    source_errors: int
    seconds: float
    workers: dict[str, int] = field(default_factory=dict)
    pids: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.images / self.seconds if self.seconds > 0 else 0.0
        return (
            f"shards={self.shards} skipped={self.skipped_shards} encoded={self.encoded_shards} "
            f"images={self.images} codes={self.codes} image_errors={self.image_errors} "
            f"source_errors={self.source_errors} seconds={self.seconds:.3f} images_per_s={rate:.1f} "
            f"workers={len(self.workers)}"
        )


def runtime_env() -> dict[str, Any]:
    """What ``ray.init`` needs so that workers can import this package: it
    is uploaded to the cluster (Ray accepts local folders only per job)."""
    return {"py_modules": [str(PACKAGE_DIR)], "excludes": ["__pycache__"]}


def index_bits(index: Path | None) -> int | None:
    if index is None:
        return None
    path = index / "ash-index.json" if index.is_dir() else index
    try:
        return int(json.loads(path.read_text())["hash"]["bits"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{path}: not an ash-search index configuration ({e})") from e


def run_job(options: JobOptions) -> JobReport:
    """Runs the job on the Ray cluster this process is connected to (or a
    local one it starts); raises ``UnfinishedShardsError`` after writing all it
    could."""
    import ray  # imported here: reading a source needs no cluster

    started = time.monotonic()
    identity = encoder_identity(options.encoder)
    bits = index_bits(options.index)
    if bits is not None and bits != identity["bits"]:
        raise EncoderError(f"{options.encoder} makes {identity['bits']}-bit codes, the index holds {bits}-bit codes")
    source = read_sources(options.sources, options.metadata, field_kinds(options.index))
    shards = plan(source.items, options.shard_size)
    output = Output(options.out)
    done = output.open(identity, shards, options.shard_size)
    output.write_source_errors(source.errors)

    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS")
        ray.init(
            address=address,
            num_cpus=None if address else options.num_cpus,
            runtime_env=runtime_env() if options.ship_code else None,
            log_to_driver=False,
        )
    gpus = options.gpus_per_task
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    settings = EncoderSettings(
        binary=find_binary(options.binary),
        encoder=str(options.encoder.resolve()),
        device=options.device or ("cuda" if gpus > 0 else "cpu"),
        threads=options.cpus_per_task,
        batch=options.batch,
        env={k: v for k, v in os.environ.items() if k == "ORT_DYLIB_PATH"},
    )
    task_options: dict[str, Any] = {
        "num_cpus": options.cpus_per_task,
        "num_gpus": gpus,
        "max_retries": options.max_retries,
        "retry_exceptions": [ShardCrashedError],
    }
    remote = ray.remote(encode_shard).options(**task_options)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // max(options.cpus_per_task, 1)))

    report = JobReport(
        shards=len(shards),
        skipped_shards=len(done),
        encoded_shards=0,
        images=0,
        codes=0,
        image_errors=0,
        source_errors=len(source.errors),
        seconds=0.0,
    )
    for index in done:
        codes, errors = output.count(index)
        report.codes += codes
        report.image_errors += errors
    todo = [s for s in shards if s.index not in done]
    failed = _run_shards(ray, remote, settings, todo, slots * 2, output, report, options.progress)
    report.seconds = time.monotonic() - started
    if failed:
        raise UnfinishedShardsError(failed)
    return report


def _run_shards(
    ray: Any,
    remote: Any,
    settings: EncoderSettings,
    todo: list[Shard],
    in_flight: int,
    output: Output,
    report: JobReport,
    progress: bool,
) -> dict[int, str]:
    from tqdm import tqdm

    settings_ref = ray.put(settings)
    pending: dict[Any, Shard] = {}
    queue = list(reversed(todo))
    failed: dict[int, str] = {}
    workers: Counter[str] = Counter()
    bar = tqdm(total=sum(len(s.items) for s in todo), unit="img", disable=not progress, smoothing=0.1)
    try:
        while queue or pending:
            while queue and len(pending) < in_flight:
                shard = queue.pop()
                pending[remote.remote(shard, settings_ref)] = shard
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                shard = pending.pop(ref)
                try:
                    result: ShardResult = ray.get(ref)
                except EncoderError as e:
                    # An interrupt, not a killed worker process: it ends the
                    # task's subprocess.run, which kills the encoder it waits
                    # on, and leaves Ray's worker pool as it was.
                    for other in pending:
                        ray.cancel(other, force=False)
                    raise EncoderError(str(getattr(e, "cause", e))) from e
                except Exception as e:  # a worker lost past its retries, a shard's output unreadable
                    failed[shard.index] = _last_line(e)
                    bar.update(len(shard.items))
                    continue
                output.write_shard(result.index, result.records, result.errors)
                report.encoded_shards += 1
                report.images += result.images
                report.codes += len(result.records)
                report.image_errors += len(result.errors)
                workers[f"{result.host}:{result.pid}"] += 1
                report.pids[result.index] = result.pid
                bar.update(len(shard.items))
    finally:
        bar.close()
        report.workers = dict(workers)
    return failed


def _last_line(e: Exception) -> str:
    """A Ray error's last line (its cause), not its whole remote traceback."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"
