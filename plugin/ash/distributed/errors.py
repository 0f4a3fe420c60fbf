"""Typed errors of the distributed encoding job, for callers to match on."""

from __future__ import annotations


class DistributedError(Exception):
    """Anything that stops a job; the message says what to do."""


class SourceError(DistributedError):
    """A source (folder, CSV or JSONL manifest) cannot be read at all."""


class JobMismatchError(DistributedError):
    """The output folder holds a different job (another source or encoder)."""


class EncoderError(DistributedError):
    """`ash-search encode` refused to run (its model, its options, its runtime).

    The same on every shard, so the job stops at the first one.
    """


class ShardCrashedError(DistributedError):
    """`ash-search encode` died from a signal mid-shard; Ray retries the shard."""


class ShardOutputError(DistributedError):
    """A shard's encoder output could not be matched to its files."""


class UnfinishedShardsError(DistributedError):
    """Some shards failed after their retries; a rerun does only those."""

    def __init__(self, failed: dict[int, str]) -> None:
        self.failed = failed
        shown = "; ".join(f"shard {i}: {why}" for i, why in sorted(failed.items())[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} shard(s) unfinished, run the job again to retry them: {shown}{more}")
