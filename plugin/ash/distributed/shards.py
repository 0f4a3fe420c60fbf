"""Shards and the output folder: how a job is cut up, and how each shard's
result is written exactly once.

The items are cut into shards of ``shard_size`` in source order; shard
``i`` is written as ``codes-0000i.jsonl`` (its code records) and
``errors-0000i.jsonl`` (its failed images). Both are written to a
temporary name and renamed, errors first: a ``codes-*`` file exists only
when its shard is complete, so it is the shard's "done" mark. A rerun
skips the done shards. ``job.json`` records the encoder and a digest of
every shard's items, so a rerun over a changed source or another encoder
is refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import JobMismatchError
from .source import Item

JOB_FILE = "job.json"
SOURCE_ERRORS = "errors-source.jsonl"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Shard:
    """A slice of the job: its number and its items."""

    index: int
    items: tuple[Item, ...]

    def digest(self) -> str:
        text = json.dumps([i.key() for i in self.items], separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def plan(items: list[Item], shard_size: int) -> list[Shard]:
    """Cuts ``items`` into shards of ``shard_size`` (the last may be smaller)."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    return [Shard(n, tuple(items[i : i + shard_size])) for n, i in enumerate(range(0, len(items), shard_size))]


def codes_name(index: int) -> str:
    return f"codes-{index:05d}.jsonl"


def errors_name(index: int) -> str:
    return f"errors-{index:05d}.jsonl"


def write_atomic(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    """Writes JSON lines under a temporary name, fsyncs, renames."""
    _replace(path, "".join(json.dumps(v, ensure_ascii=False, separators=(",", ":")) + "\n" for v in lines))


def write_atomic_json(path: Path, value: dict[str, Any]) -> None:
    """Writes one JSON document the same way."""
    _replace(path, json.dumps(value, indent=1))


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Output:
    """The output folder of one job."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, encoder: dict[str, Any], shards: list[Shard], shard_size: int) -> set[int]:
        """Creates or checks ``job.json``; returns the numbers of done shards.

        Leftover temporary files of an interrupted run are removed.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        job = {
            "format": FORMAT_VERSION,
            "encoder": encoder,
            "shard_size": shard_size,
            "shards": [s.digest() for s in shards],
        }
        path = self.root / JOB_FILE
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError as e:
                raise JobMismatchError(f"{path} is damaged ({e}); use a new output folder") from e
            self._check_same(old, job)
        else:
            if any(self.root.glob("codes-*.jsonl")):
                raise JobMismatchError(f"{self.root} has code shards but no {JOB_FILE}; use a new output folder")
            write_atomic_json(path, job)
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return {s.index for s in shards if (self.root / codes_name(s.index)).exists()}

    def _check_same(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get("format") != new["format"]:
            raise JobMismatchError(
                f"{self.root} was written by another version of this job (format {old.get('format')})"
            )
        if old.get("encoder") != new["encoder"]:
            raise JobMismatchError(
                f"{self.root} holds codes of encoder {old.get('encoder')}, not {new['encoder']}; "
                "use a new output folder"
            )
        if old.get("shard_size") != new["shard_size"]:
            raise JobMismatchError(
                f"{self.root} was cut into shards of {old.get('shard_size')}; give --shard-size the same"
            )
        if old.get("shards") != new["shards"]:
            differ = [i for i, (a, b) in enumerate(zip(old.get("shards", []), new["shards"], strict=False)) if a != b]
            was = len(old.get("shards", []))
            detail = f"shard {differ[0]} differs" if differ else f"{was} shards, now {len(new['shards'])}"
            raise JobMismatchError(
                f"the source changed since {self.root} was started ({detail}); use a new output folder "
                "(and `ash-search ingest --skip-existing` to add only new images)"
            )

    def write_shard(self, index: int, records: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        """Writes a finished shard: its errors, then its codes (the done mark)."""
        write_atomic(self.root / errors_name(index), errors)
        write_atomic(self.root / codes_name(index), records)

    def write_source_errors(self, errors: list[dict[str, Any]]) -> None:
        write_atomic(self.root / SOURCE_ERRORS, errors)

    def count(self, index: int) -> tuple[int, int]:
        """(codes, errors) lines of a done shard."""

        def lines(name: str) -> int:
            p = self.root / name
            return sum(1 for _ in p.open()) if p.exists() else 0

        return lines(codes_name(index)), lines(errors_name(index))
