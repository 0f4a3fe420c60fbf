"""``python -m ash.serve``: build and update a sharded index, and query it
through a Ray cluster.

    python -m ash.serve build ROOT --schema index.json --shards S RECORDS.jsonl...
    python -m ash.serve build ROOT RECORDS.jsonl...          # more records into existing shards
    python -m ash.serve delete ROOT ID...
    python -m ash.serve search ROOT (--code HEX | --like ID | --image FILE) [--text T] [--filter F] [-k K]
                               [--radius R] [--mode filter|rrf|weighted] [--replicas N] [--address HEAD:6379]

Records are ``ash-search ingest``'s JSONL (images relative to their file);
lines that are not records are refused and reported, as ingest does.
Exit codes: 0 done, 1 some records refused, 2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ash_search

from . import shards
from .front import ShardedSearch, ShardUnavailableError, runtime_env

#: Longest JSONL line read (``ash-search ingest``'s ``MAX_LINE_BYTES``).
MAX_LINE_BYTES = 4 << 20


def read_records(path: Path) -> Iterator[dict[str, Any] | ash_search.RecordError]:
    """The records of a JSONL file, read as ``ash-search ingest`` reads
    one: a regular file only, lines of at most ``MAX_LINE_BYTES`` (a longer
    one is refused and skipped without being held), each a JSON object; a
    line that is not one is a refused record, and reading goes on."""
    with shards.open_regular(path) as f:
        n = 0
        while line := f.readline(MAX_LINE_BYTES + 1):
            n += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield ash_search.RecordError(n, None, f"line over {MAX_LINE_BYTES} bytes")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:
                yield ash_search.RecordError(n, None, f"not JSON: {e}")
                continue
            if not isinstance(record, dict):
                yield ash_search.RecordError(n, None, "a record is a JSON object")
                continue
            yield record


def build(args: argparse.Namespace) -> int:
    for path in args.records:  # every input readable before anything is made
        try:
            shards.open_regular(path).close()
        except (OSError, ValueError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
    if (args.root / shards.MANIFEST).exists():
        if args.schema is not None or args.shards is not None:
            print(f"{args.root}: exists; --schema and --shards are for a new sharded index", file=sys.stderr)
            return 2
        layout = shards.load(args.root)
    else:
        if args.schema is None or args.shards is None:
            print("a new sharded index needs --schema and --shards", file=sys.stderr)
            return 2
        layout = shards.create(args.root, json.loads(args.schema.read_text()), args.shards)
    refused = 0
    for path in args.records:
        report = shards.ingest(layout, read_records(path), base=path.resolve().parent)
        for e in report.errors:
            print(json.dumps({"input": str(path), "line": e.line, "id": e.id, "reason": e.reason}), file=sys.stderr)
        refused += len(report.errors)
        per_shard = ", ".join(map(str, report.indexed))
        print(f"{path}: indexed {report.total} ({per_shard} per shard), refused {len(report.errors)}")
    return 1 if refused else 0


def search(args: argparse.Namespace) -> int:
    import ray

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    front = ShardedSearch(args.root, replicas=args.replicas, cpus_per_replica=args.cpus_per_replica)
    try:
        result = front.search(
            args.code,
            image=args.image,
            like=args.like,
            text=args.text,
            filter=args.filter,
            mode=args.mode,
            k=args.k,
            radius=args.radius,
        )
    except ShardUnavailableError as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps({"hits": [h.__dict__ for h in result], "took_ms": result.took_ms}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ash.serve", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="make a sharded index, or add records to one")
    b.add_argument("root", type=Path)
    b.add_argument("records", type=Path, nargs="*")
    b.add_argument("--schema", type=Path)
    b.add_argument("--shards", type=int)
    d = sub.add_parser("delete", help="delete documents by id")
    d.add_argument("root", type=Path)
    d.add_argument("ids", nargs="+")
    s = sub.add_parser("search", help="one search through a Ray cluster")
    s.add_argument("root", type=Path)
    s.add_argument("--code")
    s.add_argument("--like")
    s.add_argument("--image", help="a photograph, encoded with the shards' encoder where a replica runs")
    s.add_argument("--text")
    s.add_argument("--filter")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--radius", type=int)
    s.add_argument("--mode", default="filter", choices=["filter", "rrf", "weighted"])
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--cpus-per-replica", type=float, default=0.5)
    s.add_argument("--address", help="the cluster's head (HEAD:6379 or auto); a local Ray when absent")
    args = p.parse_args(argv)
    try:
        if args.command == "build":
            return build(args)
        if args.command == "delete":
            print(f"deleted {shards.delete(shards.load(args.root), args.ids)}")
            return 0
        return search(args)
    except (OSError, ValueError) as e:  # ShardLayoutError is a ValueError
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
