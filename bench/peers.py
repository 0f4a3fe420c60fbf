"""`make bench`: ash-search beside what a user would pick instead for
filtered binary-code search, on the same data and queries, in one run.

BENCH_PEERS_N documents (default 200,000): a 48-bit clustered code, a
`bucket` 0..99 (for filters of a chosen selectivity) and a grade. Each
system answers the same BENCH_PEERS_QUERIES k=10 queries (default 200),
one at a time from one thread, unfiltered and with `bucket < p` for p in
1, 10 and 50 (%):
  * ash-search through its Python module (`ash_search.Index.search`, the
    filter a tantivy range query);
  * Milvus Lite 2.5.1 (`BINARY_VECTOR`, `BIN_FLAT`, `HAMMING`, a filter
    expression), exact by construction (Milvus Lite 3.x has no binary
    vectors);
  * LanceDB (a fixed-size list of bytes, `distance_type("hamming")`, no
    vector index, so an exact scan, with `prefilter=True`).
Every peer's distances are checked against ash-search's for every query
(the ids may differ only inside a tie at the 10th distance). Prints
p50/p99 ms per query and the ratio of each peer's p50 to ash-search's.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

N = int(os.environ.get("BENCH_PEERS_N", "200000"))
QUERIES = int(os.environ.get("BENCH_PEERS_QUERIES", "200"))
K = 10
BITS = 48
SELECTIVITIES = (None, 1, 10, 50)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    centres = rng.integers(0, 256, (2000, BITS // 8), dtype=np.uint8)
    codes = centres[rng.integers(0, 2000, N)] ^ np.packbits(rng.random((N, BITS)) < 0.05, axis=1)
    buckets = rng.integers(0, 100, N)
    picks = rng.integers(0, N, QUERIES)
    queries = codes[picks] ^ np.packbits(rng.random((QUERIES, BITS)) < 0.08, axis=1)
    return codes, buckets, queries, rng.integers(0, 5, N)


def timed(search: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Each query's distances, and its latency in ms."""
    answers, ms = [], []
    for q in queries:
        t = time.perf_counter()
        answers.append(search(q))
        ms.append((time.perf_counter() - t) * 1e3)
    return answers, np.array(ms)


def ash(tmp: Path, codes: np.ndarray, buckets: np.ndarray, grades: np.ndarray) -> Callable[[int | None], Callable]:
    import ash_search

    schema = {
        "fields": [
            {"name": "id", "type": "keyword", "stored": True},
            {"name": "bucket", "type": "integer", "fast": True},
            {"name": "grade", "type": "integer", "fast": True},
        ],
        "hash": {"name": "code", "bits": BITS},
    }
    index = ash_search.Index.create(tmp / "ash", schema)
    index.ingest(
        (
            {"id": str(i), "bucket": int(b), "grade": int(g), "code": c}
            for i, (c, b, g) in enumerate(zip(codes, buckets, grades, strict=True))
        ),
        commit_every=N,
    )

    def make(p: int | None) -> Callable[[np.ndarray], list[int]]:
        flt = None if p is None else f"bucket:[0 TO {p - 1}]"
        return lambda q: [h.distance for h in index.search(code=q, filter=flt, k=K)]

    return make


def milvus(tmp: Path, codes: np.ndarray, buckets: np.ndarray, grades: np.ndarray) -> Callable[[int | None], Callable]:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(tmp / "milvus.db"))
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("code", DataType.BINARY_VECTOR, dim=BITS)
    schema.add_field("bucket", DataType.INT64)
    schema.add_field("grade", DataType.INT64)
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection("codes", schema=schema, index_params=index_params)
    for start in range(0, N, 10_000):
        rows = [
            {"id": i, "code": codes[i].tobytes(), "bucket": int(buckets[i]), "grade": int(grades[i])}
            for i in range(start, min(start + 10_000, N))
        ]
        client.insert("codes", rows)
    client.load_collection("codes")

    def make(p: int | None) -> Callable[[np.ndarray], list[int]]:
        flt = "" if p is None else f"bucket < {p}"

        def search(q: np.ndarray) -> list[int]:
            res = client.search(
                "codes",
                data=[q.tobytes()],
                anns_field="code",
                filter=flt,
                limit=K,
                search_params={"metric_type": "HAMMING"},
            )
            return [round(h["distance"]) for h in res[0]]

        return search

    return make


def lance(tmp: Path, codes: np.ndarray, buckets: np.ndarray, grades: np.ndarray) -> Callable[[int | None], Callable]:
    import lancedb
    import pyarrow as pa

    width = BITS // 8
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(codes.reshape(-1), pa.uint8()), width)
    table = pa.table(
        {"id": pa.array(np.arange(N)), "vector": vectors, "bucket": pa.array(buckets), "grade": pa.array(grades)}
    )
    tbl = lancedb.connect(str(tmp / "lance")).create_table("codes", table)

    def make(p: int | None) -> Callable[[np.ndarray], list[int]]:
        def search(q: np.ndarray) -> list[int]:
            query = tbl.search(q, vector_column_name="vector").distance_type("hamming").limit(K)
            if p is not None:
                query = query.where(f"bucket < {p}", prefilter=True)
            return [round(d) for d in query.to_arrow()["_distance"].to_pylist()]

        return search

    return make


def main() -> None:
    codes, buckets, queries, grades = data()
    machine = platform.processor() or platform.machine()
    print(f"peers: {N:,} {BITS}-bit codes, {QUERIES} queries, k={K}, one thread, {os.cpu_count()} cores, {machine}")
    results: dict[str, dict[int | None, tuple[list[list[int]], np.ndarray]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("ash-search", ash), ("Milvus Lite", milvus), ("LanceDB", lance)):
            t = time.perf_counter()
            make = build(Path(tmp), codes, buckets, grades)
            built = time.perf_counter() - t
            results[name] = {}
            for p in SELECTIVITIES:
                search = make(p)
                for q in queries[:5]:  # warm
                    search(q)
                results[name][p] = timed(search, queries)
            print(f"{name}: built in {built:.1f} s")
    ours = results["ash-search"]
    for name, rows in results.items():
        for p, (answers, _) in rows.items():
            wrong = sum(a != b for a, b in zip(answers, ours[p][0], strict=True))
            if wrong:
                print(f"!! {name}, filter {p}%: {wrong} of {QUERIES} answers differ from ash-search's distances")
    print(f"{'system':<12} {'filter':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs ash':>11}")
    for name, rows in results.items():
        for p, (_, ms) in rows.items():
            base = np.percentile(ours[p][1], 50)
            label = "none" if p is None else f"{p}%"
            p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
            print(f"{name:<12} {label:>7} {p50:>8.3f} {p99:>8.3f} {p50 / base:>10.1f}x")


if __name__ == "__main__":
    main()
