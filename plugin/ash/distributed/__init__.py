"""Encoding an archive on a Ray cluster: ``python -m ash.distributed``.

Searching fits one machine; encoding millions of photographs does not. This
package cuts an image source (folders, CSV or JSONL manifests) into shards
(``source``, ``shards``), encodes every shard on a Ray worker with the
product's own ``ash-search encode`` (``worker``), and writes code records
(``schemas/record.schema.json``) as JSONL shards, each exactly once, with
failed images in error shards of ``ash-search ingest``'s shape (``job``).
``ash-search ingest INDEX OUT/codes-*.jsonl`` then indexes them without
running the encoder.

It imports neither PyTorch nor numpy: a worker needs Python, Ray, the
``ash-search`` binary with ONNX Runtime, and the encoder plugin folder.

>>> from ash.distributed.shards import plan
>>> from ash.distributed.source import Item
>>> [len(s.items) for s in plan([Item(i, "x.csv", str(i), f"{i}.png") for i in range(5)], 2)]
[2, 2, 1]
"""

from .errors import (
    DistributedError,
    EncoderError,
    JobMismatchError,
    ShardCrashedError,
    ShardOutputError,
    SourceError,
    UnfinishedShardsError,
)
from .job import JobOptions, JobReport, run_job, runtime_env

__all__ = [
    "DistributedError",
    "EncoderError",
    "JobMismatchError",
    "JobOptions",
    "JobReport",
    "ShardCrashedError",
    "ShardOutputError",
    "SourceError",
    "UnfinishedShardsError",
    "run_job",
    "runtime_env",
]
