"""Sharded indexes on disk: which shard holds an id, and building or
updating the shards from records.

A sharded index is a folder holding ``shards.json`` and one ordinary
ash-search index per shard (``shard-000``, ``shard-001``, …), all made from
the same configuration. A record goes to shard ``blake2b-64(id) mod S``, so
an id always lands in the same shard: ingesting a record again replaces it
there, and a delete goes to one shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ash_search

MANIFEST = "shards.json"
#: Most shards a layout may have (a manifest claiming more is refused).
MAX_SHARDS = 4096
#: Largest ``shards.json`` read.
MAX_MANIFEST_BYTES = 1 << 20


class ShardLayoutError(ValueError):
    """The folder is not a sharded index, or not one of this layout."""


def shard_of(doc_id: str, shards: int) -> int:
    """The shard holding ``doc_id``: the first 8 bytes of its BLAKE2b
    digest, little-endian, modulo ``shards``.

    >>> [shard_of(i, 4) for i in ("case-00", "case-01", "case-02")]
    [3, 1, 2]
    """
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


@dataclass(frozen=True)
class Layout:
    """A sharded index: its folder, shard count and configuration."""

    root: Path
    shards: int
    schema: dict[str, Any]

    def path(self, shard: int) -> Path:
        return self.root / f"shard-{shard:03d}"

    @property
    def paths(self) -> list[Path]:
        return [self.path(s) for s in range(self.shards)]


def create(root: Path, schema: Mapping[str, Any], shards: int) -> Layout:
    """Makes ``root`` a sharded index of ``shards`` empty indexes."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ShardLayoutError(f"shards must be 1 to {MAX_SHARDS}, got {shards}")
    if (root / MANIFEST).exists():
        raise ShardLayoutError(f"{root}: a sharded index exists already")
    root.mkdir(parents=True, exist_ok=True)
    layout = Layout(root, shards, dict(schema))
    for path in layout.paths:
        ash_search.Index.create(path, schema)
    # Written last: it is what makes the folder a sharded index.
    (root / MANIFEST).write_text(json.dumps({"shards": shards, "hash": "blake2b-64 mod shards", "schema": schema}))
    return layout


def load(root: Path) -> Layout:
    """The sharded index in ``root``."""
    try:
        manifest = json.loads(read_regular(root / MANIFEST, MAX_MANIFEST_BYTES))
        shards, schema = manifest["shards"], manifest["schema"]
        if not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS or not isinstance(schema, dict):
            raise ValueError(f"shards must be 1 to {MAX_SHARDS} and schema an object")
        layout = Layout(root, shards, schema)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise ShardLayoutError(f"{root}: not a sharded index ({e})") from e
    missing = [p for p in layout.paths if not p.is_dir()]
    if missing:
        raise ShardLayoutError(f"{root}: shards missing: {', '.join(p.name for p in missing)}")
    return layout


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (never a pipe, a
    device or a folder, which could block or never end). It is opened
    without blocking (opening a pipe would wait for a writer) and checked on
    the open file, so a swap after a check cannot slip past."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refused past ``limit``."""
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit} bytes")
    return data


@dataclass
class BuildReport:
    """What :func:`ingest` did, per shard and in all."""

    indexed: list[int]
    errors: list[ash_search.RecordError]

    @property
    def total(self) -> int:
        return sum(self.indexed)


def ingest(
    layout: Layout,
    records: Iterable[Mapping[str, Any] | ash_search.RecordError],
    *,
    base: Path | None = None,
    block: int = 10_000,
) -> BuildReport:
    """Routes each record to its shard and ingests it there (images encoded
    by the pinned encoder, relative to ``base``). Records go in blocks of
    ``block``: each block is committed in every shard before the next. An
    item that is already a ``RecordError`` (a line its reader refused) is
    reported as it is."""
    indexes = [ash_search.Index.open(p) for p in layout.paths]
    report = BuildReport([0] * layout.shards, [])
    # Per shard: (the record's number in the input, from 1; the record).
    pending: list[list[tuple[int, Mapping[str, Any]]]] = [[] for _ in indexes]

    def flush() -> None:
        for s, rows in enumerate(pending):
            if rows:
                r = indexes[s].ingest([rec for _, rec in rows], base=base, commit_every=len(rows))
                report.indexed[s] += r.indexed
                # Error lines count within the shard's block: name the input's.
                report.errors.extend(ash_search.RecordError(rows[e.line - 1][0], e.id, e.reason) for e in r.errors)
                rows.clear()

    n = 0
    for n, record in enumerate(records, 1):
        if isinstance(record, ash_search.RecordError):
            report.errors.append(record)
            continue
        doc_id = record.get("id") if isinstance(record, Mapping) else None
        if not isinstance(doc_id, str):
            report.errors.append(ash_search.RecordError(n, None, "a record has a string id"))
        else:
            pending[shard_of(doc_id, layout.shards)].append((n, record))
        if n % block == 0:
            flush()
    flush()
    return report


def delete(layout: Layout, ids: Iterable[str]) -> int:
    """Deletes documents by id from their shards; returns how many existed."""
    by_shard: dict[int, list[str]] = {}
    for doc_id in ids:
        by_shard.setdefault(shard_of(doc_id, layout.shards), []).append(doc_id)
    deleted = 0
    for s, doc_ids in by_shard.items():
        index = ash_search.Index.open(layout.path(s))
        deleted += index.delete(doc_ids)
        index.commit()
    return deleted
