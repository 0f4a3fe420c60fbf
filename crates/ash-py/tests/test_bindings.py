"""``ash_search`` against the CLI on the same index, its typed exceptions,
concurrency (a search during an ingest, the GIL released) and memory over
100,000 searches."""

from __future__ import annotations

import json
import resource
import shutil
import threading
import time
from pathlib import Path

import ash_search
import numpy as np
import pytest
from ash_search import errors
from conftest import ENCODER, FIXTURES, SCHEMA, cli, fixture_records, random_codes
from PIL import Image

# --- the same answers as the CLI ---------------------------------------------------------

QUERIES: list[dict[str, object]] = [
    {"like": "case-03", "k": 5},
    {"code": "a5f00f3c9e11", "k": 8},
    {"code": "a5f00f3c9e11", "k": 20, "radius": 28},
    {"text": "exudates", "k": 5},
    {"like": "case-02", "text": "haemorrhages OR exudates", "mode": "rrf", "k": 6},
    {"like": "case-02", "text": "microaneurysms", "mode": "weighted", "weight": 0.3, "k": 6},
    {"like": "case-05", "filter": "grade:[2 TO 4] AND eye:OD", "k": 5},
    {"like": "case-05", "text": "macula", "filter": "modality:fundus", "mode": "filter", "k": 4},
]


def cli_hits(index: Path, query: dict[str, object]) -> list[dict[str, object]]:
    args: list[object] = ["search", index, "--json"]
    for key, value in query.items():
        args += ["-k" if key == "k" else f"--{key}", value]
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["hits"]


@pytest.mark.parametrize("query", QUERIES, ids=[json.dumps(q) for q in QUERIES])
def test_search_equals_the_cli_on_the_same_index(cli_index: Path, query: dict[str, object]) -> None:
    expected = cli_hits(cli_index, query)
    index = ash_search.Index.open(cli_index, read_only=True)
    got = index.search(**query)  # type: ignore[arg-type]
    assert [(h.id, h.distance, h.score, h.fields) for h in got] == [
        (h["id"], h["distance"], h["score"], h["fields"]) for h in expected
    ]
    assert len(expected) > 0


def test_image_search_equals_the_cli(cli_index: Path) -> None:
    photo = FIXTURES / "images" / "case-07.png"
    expected = cli_hits(cli_index, {"image": photo, "k": 5})
    index = ash_search.Index.open(cli_index, read_only=True)
    from_file = index.search(image=photo, k=5)
    from_array = index.search(image=np.asarray(Image.open(photo).convert("RGB")), k=5)
    want = [(h["id"], h["distance"]) for h in expected]
    assert [(h.id, h.distance) for h in from_file] == want
    assert [(h.id, h.distance) for h in from_array] == want


def test_ingest_from_python_makes_the_cli_index(cli_index: Path, tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "py", SCHEMA)
    report = index.ingest(fixture_records(), base=FIXTURES, batch=4)
    cli_side = ash_search.Index.open(cli_index, read_only=True)
    assert len(index) == len(cli_side) == report.indexed
    assert report.failed == len(report.errors) > 0
    refused = {e.id for e in report.errors}
    assert "bad-grade" in refused
    # Every document has the CLI index's code: each one's own code finds
    # the same neighbours at the same distances in both.
    ids = [r["id"] for r in fixture_records() if r["id"] not in refused]
    for doc in sorted(set(ids)):
        a = index.search(like=doc, k=len(index))
        b = cli_side.search(like=doc, k=len(index))
        assert sorted((h.distance, h.id) for h in a) == sorted((h.distance, h.id) for h in b)


def test_search_many_equals_one_search_at_a_time(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "codes", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    codes = random_codes(3000, 6, seed=1)
    index.ingest({"id": f"d{i:05d}", "grade": i % 5, "code": c} for i, c in enumerate(codes))
    queries = random_codes(40, 6, seed=2)
    ids, distances = index.search_many(queries, k=7)
    assert distances.shape == (40, 7)
    for q, got_ids, got_d in zip(queries, ids, distances, strict=True):
        one = index.search(code=q, k=7)
        assert got_ids == [h.id for h in one]
        assert list(got_d) == [h.distance for h in one]
        # and exact: the distances are the 7 smallest of a scan
        scan = np.unpackbits(codes ^ q, axis=1).sum(axis=1)
        assert list(got_d) == sorted(scan)[:7]
    _, within = index.search_many(queries[:5], k=3000, radius=4)
    for q, row in zip(queries[:5], within, strict=True):
        scan = np.unpackbits(codes ^ q, axis=1).sum(axis=1)
        assert (row >= 0).sum() == (scan <= 4).sum()


def test_codes_as_bytes_hex_and_numpy_are_the_same(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "forms", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    code = np.array([1, 2, 3, 4, 5, 6], np.uint8)
    index.ingest([{"id": "a", "code": code}, {"id": "b", "code": bytes(code)}, {"id": "c", "code": bytes(code).hex()}])
    assert [h.distance for h in index.search(code=code, k=3)] == [0, 0, 0]
    assert index.code("b").tolist() == code.tolist()
    with pytest.raises(errors.NotFound):
        index.code("nobody")


def test_delete_then_commit(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "del", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    codes = random_codes(100, 6, seed=3)
    index.ingest({"id": f"d{i}", "code": c} for i, c in enumerate(codes))
    assert index.delete(["d1", "d2", "nobody"]) == 2
    assert len(index) == 100  # not yet committed
    index.commit()
    assert len(index) == 98
    with pytest.raises(errors.NotFound):
        index.search(like="d1")
    reopened = ash_search.Index.open(tmp_path / "del")
    assert len(reopened) == 98


# --- the encoder -------------------------------------------------------------------------


def test_encoder_equals_ash_search_encode(tmp_path: Path) -> None:
    files = [*sorted((FIXTURES / "images").glob("case-*.png")), FIXTURES / "images" / "retina.jpg"]
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(map(str, files)) + "\n")
    out = cli("encode", "--json", "--encoder", ENCODER, "--device", "cpu", "--files-from", listing)
    assert out.returncode == 0, out.stderr
    expected = [bytes.fromhex(json.loads(line)["code"]) for line in out.stdout.splitlines()]
    encoder = ash_search.Encoder.open(ENCODER, device="cpu")
    codes = encoder.encode(files, batch=3)
    assert codes.dtype == np.uint8 and codes.shape == (len(files), 6)
    assert [c.tobytes() for c in codes] == expected
    # The same pixels as arrays: the same codes.
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    assert [c.tobytes() for c in encoder.encode(arrays)] == expected


def test_encoder_names_images_without_a_code() -> None:
    encoder = ash_search.Encoder.open(ENCODER, device="cpu")
    good = FIXTURES / "images" / "case-00.png"
    with pytest.raises(errors.InvalidInput) as caught:
        encoder.encode([good, FIXTURES / "images" / "truncated.png", FIXTURES / "images" / "not-an-image.png"])
    assert [i for i, _, _ in caught.value.failures] == [1, 2]  # type: ignore[attr-defined]
    with pytest.raises(errors.InvalidInput):
        encoder.encode([np.zeros((10, 10, 4), np.uint8)])
    with pytest.raises(errors.InvalidInput):
        encoder.encode([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(errors.InvalidInput):
        ash_search.Encoder.open(ENCODER, device="tpu")


def test_hostile_pixel_arrays_are_refused_before_any_copy() -> None:
    encoder = ash_search.Encoder.open(ENCODER, device="cpu")
    for shape in [(1, 20_000, 3), (0, 10, 3), (10, 0)]:
        with pytest.raises(errors.InvalidInput):
            encoder.encode([np.zeros(shape, np.uint8)])
    native = encoder._native
    # Sizes whose product overflows, and lengths that do not add up.
    with pytest.raises(errors.InvalidInput):
        native.encode_pixels(b"", 2**62, 16_384, 16_384, 3)
    with pytest.raises(errors.InvalidInput):
        native.encode_pixels(bytes(10), 1, 2, 2, 3)
    packed, why = native.encode_pixels(bytes(8), 2, 2, 2, 1)  # two 2×2 grey images: fine
    assert len(packed) == 12 and why == [None, None]


# --- typed exceptions ---------------------------------------------------------------------


def test_bad_input_raises_the_typed_exceptions(cli_index: Path, tmp_path: Path) -> None:
    index = ash_search.Index.open(cli_index, read_only=True)
    cases = [
        (errors.InvalidInput, lambda: index.search(like="case-01", k=0)),
        (errors.InvalidInput, lambda: index.search(like="case-01", mode="fuzzy")),
        (errors.InvalidInput, lambda: index.search(like="case-01", code="00")),
        (errors.InvalidInput, lambda: index.search(code="zz")),
        (errors.InvalidInput, lambda: index.search(code="00112233445566")),
        (errors.InvalidInput, lambda: index.search(like="case-01", filter="grade:[1 TO")),
        (errors.InvalidInput, lambda: index.search(like="case-01", k=-3)),
        (errors.InvalidInput, lambda: index.search()),
        (errors.InvalidInput, lambda: index.search_many(np.zeros((2, 5), np.uint8))),
        (errors.InvalidInput, lambda: index.search_many(np.zeros((2, 6), np.uint8), k=0)),
        (errors.NotFound, lambda: index.search(like="nobody")),
        (errors.Conflict, lambda: index.ingest([{"id": "x", "code": "000000000000"}])),
        (errors.Conflict, lambda: index.delete(["case-01"])),
        (errors.NotFound, lambda: ash_search.Index.open(tmp_path / "nothing")),
        (errors.Conflict, lambda: ash_search.Index.create(cli_index, SCHEMA)),
        (errors.InvalidInput, lambda: ash_search.Index.create(tmp_path / "bad", {"fields": []})),
        (errors.InvalidInput, lambda: ash_search.Index.create(tmp_path / "bad2", {**SCHEMA, "hash": {"bits": 0}})),
        (errors.Unavailable, lambda: ash_search.Encoder.open(tmp_path / "no-plugin")),
    ]
    for expected, call in cases:
        with pytest.raises(expected):
            call()
    # Each is also the built-in a caller would catch otherwise.
    assert issubclass(errors.InvalidInput, ValueError) and issubclass(errors.NotFound, LookupError)


def test_a_record_value_that_is_not_json_writes_nothing_of_its_block(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "bad", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    with pytest.raises(errors.InvalidInput, match="record 2"):
        index.ingest([{"id": "a", "code": "000000000000"}, {"id": "b", "report": object()}])
    with pytest.raises(errors.InvalidInput, match="record 1"):
        index.ingest([{"id": "c", "grade": float("nan")}])
    assert len(index) == 0


def test_deep_and_oversized_records_are_refused_not_fatal(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "hostile", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    deep: object = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(errors.InvalidInput, match="record 1"):
        index.ingest([{"id": "deep", "report": deep}])
    nested = {"id": "nested", "report": json.loads("[" * 500 + "]" * 500)}  # JSON, but deeper than the core parses
    huge = {"id": "huge", "report": "x" * (5 << 20), "code": "000000000000"}
    report = index.ingest([nested, huge, {"id": "fine", "code": "000000000000"}])
    assert report.indexed == 1 and {e.line for e in report.errors} == {1, 2}
    assert [h.id for h in index.search(code="000000000000", k=5)] == ["fine"]


def test_a_second_writer_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy"
    first = ash_search.Index.create(path, {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    first.ingest([{"id": "a", "code": "000000000000"}])
    first.delete(["a"])  # holds the writer until commit
    second = ash_search.Index.open(path)
    with pytest.raises(errors.Busy):
        second.ingest([{"id": "b", "code": "000000000000"}])
    first.commit()
    assert second.ingest([{"id": "b", "code": "000000000000"}]).indexed == 1


def test_a_damaged_code_table_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "damaged"
    index = ash_search.Index.create(path, {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    index.ingest({"id": f"d{i}", "code": c} for i, c in enumerate(random_codes(500, 6, seed=4)))
    del index
    tables = sorted(path.glob("*.mih"))
    assert tables, "the index has code tables"
    data = tables[0].read_bytes()
    tables[0].write_bytes(data[: len(data) // 2])  # cut short
    with pytest.raises(errors.Corrupt):
        ash_search.Index.open(path).search(code="000000000000", k=3)


def test_images_without_onnx_runtime_are_unavailable_not_a_crash(tmp_path: Path) -> None:
    # Checked in a child process: ONNX Runtime loads once per process.
    import subprocess
    import sys

    script = (
        "import ash_search, sys\n"
        "try:\n"
        f"    ash_search.Encoder.open({str(ENCODER)!r})\n"
        "except ash_search.Unavailable as e:\n"
        "    print('unavailable', e); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "ORT_DYLIB_PATH": str(tmp_path / "libonnxruntime.so.1.31.1")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


# --- concurrency and memory ----------------------------------------------------------------


def test_a_search_during_an_ingest_in_another_thread(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "live", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    index.ingest([{"id": "seed", "code": "000000000000"}])
    codes = random_codes(60_000, 6, seed=5)
    done = threading.Event()
    failures: list[BaseException] = []

    def ingest() -> None:
        try:
            index.ingest(({"id": f"d{i}", "code": c} for i, c in enumerate(codes)), commit_every=15_000)
        except BaseException as e:  # reported below
            failures.append(e)
        finally:
            done.set()

    writer = threading.Thread(target=ingest)
    writer.start()
    seen = []
    while not done.is_set():
        hits = index.search(code="000000000000", k=1)
        assert hits[0].distance is not None
        seen.append(len(index))
    writer.join()
    assert not failures, failures
    assert len(seen) > 0, "searches ran while the ingest did"
    assert seen == sorted(seen), "a search never sees fewer documents than one before it"
    assert len(index) == 60_001


def test_the_gil_is_released_during_a_search(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "gil", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    index.ingest({"id": f"d{i}", "code": c} for i, c in enumerate(random_codes(50_000, 6, seed=6)))
    queries = random_codes(4000, 6, seed=7)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.05)
    before = ticks
    index.search_many(queries, k=50, radius=48)  # one native call, long enough to see
    during = ticks - before
    stop.set()
    counter.join()
    # With the GIL held for the whole call the counter could not move.
    assert during > 1000, during


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_memory_does_not_grow_over_100000_searches(tmp_path: Path) -> None:
    index = ash_search.Index.create(tmp_path / "mem", {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    codes = random_codes(20_000, 6, seed=8)
    index.ingest({"id": f"d{i}", "eye": "OD" if i % 2 else "OS", "code": c} for i, c in enumerate(codes))
    queries = [c.tobytes().hex() for c in random_codes(1000, 6, seed=9)]
    for q in queries * 10:  # warm: caches, allocator
        index.search(code=q, k=10)
    start = rss_mib()
    for i in range(100_000):
        q = queries[i % len(queries)]
        if i % 2:
            index.search(code=q, k=10)
        else:
            index.search(code=q, k=10, filter="eye:OD")
    grown = rss_mib() - start
    assert grown < 16, f"resident memory grew by {grown:.1f} MiB over 100,000 searches"


def test_the_index_closes_with_its_objects(tmp_path: Path) -> None:
    path = tmp_path / "closed"
    index = ash_search.Index.create(path, {**SCHEMA, "hash": {"name": "code", "bits": 48}})
    index.ingest([{"id": "a", "code": "000000000000"}])
    del index
    shutil.rmtree(path)
    assert not path.exists()
