"""``ash.serve`` on a real local Ray cluster of two nodes (``ray.cluster_utils.Cluster``,
on loopback): a sharded index answers as one index holding every document
does, for k-NN, radius, filtered and example searches and batches; a replica
killed mid-load is replaced and no query returns a partial answer without
saying so.

Needs the ``ash_search`` module in this venv (``make python-install``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import ash_search
except ImportError:
    pytest.fail("the ash_search module is missing from this venv: run `make python-install`", pytrace=False)

from ash.serve import ShardedSearch, ShardUnavailableError, create, delete, ingest, runtime_env, shard_of

N_DOCS = 4000
SHARDS = 3
SCHEMA = {
    "fields": [
        {"name": "id", "type": "keyword", "stored": True},
        {"name": "eye", "type": "keyword", "stored": True},
        {"name": "grade", "type": "integer", "stored": True, "fast": True},
        {"name": "report", "type": "text", "stored": True},
    ],
    "hash": {"name": "code", "bits": 48},
}
WORDS = (
    "microaneurysms haemorrhages exudates hard soft cotton wool spots venous beading neovascularisation disc "
    "macula fovea arcades temporal nasal vitreous oedema laser scars drusen pigment normal mild moderate severe"
).split()


def records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (40, 6), dtype=np.uint8)
    reports = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]
    codes = centres[rng.integers(0, 40, n)] ^ np.packbits(rng.random((n, 48)) < 0.08, axis=1)
    return [
        {
            "id": f"doc-{i:05d}",
            "eye": "OD" if i % 3 else "OS",
            "grade": int(i % 5),
            "report": reports[i],
            "code": codes[i],
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serve")
    docs = records(N_DOCS, seed=11)
    single = ash_search.Index.create(root / "single", SCHEMA)
    single.ingest(docs)
    layout = create(root / "sharded", SCHEMA, SHARDS)
    report = ingest(layout, docs, block=1500)
    assert report.total == N_DOCS and not report.errors
    assert all(n > N_DOCS / SHARDS / 2 for n in report.indexed), report.indexed
    # An update: some documents replaced (same id, same shard) and deleted, in both.
    changed = [{**d, "grade": 4, "code": np.zeros(6, np.uint8)} for d in docs[:50]]
    single.ingest(changed)
    ingest(layout, changed)
    gone = [d["id"] for d in docs[50:80]]
    assert delete(layout, gone) == 30
    assert single.delete(gone) == 30
    single.commit()
    return {"single": single, "root": root / "sharded", "docs": docs}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    c.add_node(num_cpus=2)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, runtime_env=runtime_env())
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def front(data: dict[str, Any], cluster: None) -> Iterator[ShardedSearch]:
    f = ShardedSearch(data["root"], replicas=2, cpus_per_replica=0.25, timeout_s=60)
    yield f
    f.close()


def same_answer(sharded: list[tuple[int, str]], single: list[tuple[int, str]], k: int) -> None:
    """Equal distances; equal ids except among a tie at the k-th distance,
    where each side may hold any of the tied documents."""
    assert [d for d, _ in sharded] == [d for d, _ in single]
    if not single:
        return
    last = single[-1][0] if len(single) == k else None
    assert {i for d, i in sharded if d != last} == {i for d, i in single if d != last}


def pairs(hits: Any) -> list[tuple[int, str]]:
    return [(h.distance, h.id) for h in hits]


def queries(n: int) -> np.ndarray:
    rng = np.random.default_rng(99)
    return rng.integers(0, 256, (n, 6), dtype=np.uint8)


def test_the_build_command_routes_records_and_refuses_what_it_must(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    docs = records(300, seed=3)
    jsonl = tmp_path / "records.jsonl"
    rows = [{**d, "code": d["code"].tobytes().hex()} for d in docs] + [{"id": "bad", "grade": "two"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    root = tmp_path / "sharded"

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ash.serve", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    made = run("build", root, jsonl, "--schema", tmp_path / "schema.json", "--shards", 2)
    assert made.returncode == 1, made.stderr  # one record refused
    assert json.loads(made.stderr.splitlines()[-1])["line"] == 301
    counts = [len(ash_search.Index.open(root / f"shard-{s:03d}")) for s in range(2)]
    assert sum(counts) == 300 and min(counts) > 100
    for d in docs[:20]:
        holder = ash_search.Index.open(root / f"shard-{shard_of(d['id'], 2):03d}")
        assert holder.code(d["id"]).tolist() == d["code"].tolist()
    assert run("build", root, jsonl, "--shards", 3).returncode == 2  # the layout is fixed
    assert run("delete", root, "doc-00001", "doc-00002").stdout.strip() == "deleted 2"
    assert run("build", tmp_path / "nothing", jsonl).returncode == 2


def test_hostile_inputs_of_the_build_command_and_the_layout(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from ash.serve import ShardLayoutError, load

    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    jsonl = tmp_path / "records.jsonl"
    good = json.dumps({"id": "a", "code": "000000000000"})
    lines = [good, "{not json", "x" * (5 << 20), "[1, 2]", "[" * 100_000, json.dumps({"id": "b", "code": "0" * 12})]
    jsonl.write_text("\n".join(lines) + "\n")
    root = tmp_path / "sharded"

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ash.serve", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    made = run("build", root, jsonl, "--schema", tmp_path / "schema.json", "--shards", 2)
    assert made.returncode == 1, made.stderr
    refused = [json.loads(line)["line"] for line in made.stderr.splitlines()]
    assert refused == [2, 3, 4, 5]
    assert sum(len(ash_search.Index.open(root / f"shard-{s:03d}")) for s in range(2)) == 2
    # A pipe as input is refused at once, never read (it would block).
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert run("build", root, fifo).returncode == 2
    # A manifest that claims too many shards, is a folder, or is huge.
    manifest = root / "shards.json"
    for bad in ['{"shards": 1000000000, "schema": {}}', '{"shards": 2, "schema": []}', " " * (2 << 20)]:
        manifest.write_text(bad)
        with pytest.raises(ShardLayoutError):
            load(root)
    manifest.unlink()
    manifest.mkdir()
    with pytest.raises(ShardLayoutError):
        load(root)


def test_replicas_spread_over_both_nodes(front: ShardedSearch) -> None:
    import ray

    nodes = ray.get([r.node.remote() for s in front.replicas for r in s])
    assert len(nodes) == SHARDS * 2
    assert len(set(nodes)) == 2, "the replicas run on both nodes"


def test_the_search_command_answers_through_the_cluster(front: ShardedSearch, data: dict[str, Any]) -> None:
    import json
    import subprocess
    import sys

    import ray

    address = ray.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "ash.serve", "search", str(data["root"]), "--like", "doc-00100", "-k", "5"]
    out = subprocess.run([*cmd, "--address", address], capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = [(h["distance"], h["id"]) for h in json.loads(out.stdout.splitlines()[-1])["hits"]]
    same_answer(got, pairs(data["single"].search(like="doc-00100", k=5)), 5)


def test_knn_and_radius_equal_one_index(front: ShardedSearch, data: dict[str, Any]) -> None:
    single = data["single"]
    for q in queries(40):
        for k in (1, 10, 57):
            same_answer(pairs(front.search(q, k=k)), pairs(single.search(code=q, k=k)), k)
        a = front.search(q, k=4000, radius=12)
        b = single.search(code=q, k=4000, radius=12)
        assert sorted(pairs(a)) == sorted(pairs(b))  # a radius answer is a set: exact
        assert pairs(a) == sorted(pairs(a))


def test_filtered_and_example_searches_equal_one_index(front: ShardedSearch, data: dict[str, Any]) -> None:
    single = data["single"]
    filters = ["grade:[2 TO 4]", "eye:OS AND grade:1", "report:exudates", "grade:4 AND eye:OD"]
    for q in queries(15):
        for f in filters:
            same_answer(pairs(front.search(q, filter=f, k=10)), pairs(single.search(code=q, filter=f, k=10)), 10)
        # Hybrid filter mode: the text restricts, the distance ranks.
        hybrid = {"text": "exudates OR drusen", "filter": "grade:[1 TO 3]", "k": 10}
        same_answer(pairs(front.search(q, **hybrid)), pairs(single.search(code=q, **hybrid)), 10)
    for doc in data["docs"][:60:7]:
        if doc["id"] in {d["id"] for d in data["docs"][50:80]}:
            with pytest.raises(ash_search.NotFound):
                front.search(like=doc["id"])
            continue
        same_answer(pairs(front.search(like=doc["id"], k=10)), pairs(single.search(like=doc["id"], k=10)), 10)
    # The updated documents (code zero, grade 4) are found as the single index finds them.
    zero = np.zeros(6, np.uint8)
    want = pairs(single.search(code=zero, filter="grade:4", k=60))
    same_answer(pairs(front.search(zero, filter="grade:4", k=60)), want, 60)


def test_batches_equal_one_index(front: ShardedSearch, data: dict[str, Any]) -> None:
    q = queries(200)
    ids, distances, missing = front.search_many(q, k=10)
    want_ids, want_d = data["single"].search_many(q, k=10)
    assert not missing
    assert (distances == want_d).all()
    for row in range(len(q)):
        got = list(zip(distances[row].tolist(), ids[row], strict=True))
        want = list(zip(want_d[row].tolist(), want_ids[row], strict=True))
        same_answer(got, want, 10)


def test_fused_modes_over_shards_are_measured(front: ShardedSearch, data: dict[str, Any]) -> None:
    """RRF is fused at the front over global ranks; its text side and the
    weighted mode use per-shard BM25 statistics: say how far from one index."""
    single = data["single"]
    overlap: dict[str, list[float]] = {"rrf": [], "weighted": [], "text": []}
    for q in queries(20):
        for mode in ("rrf", "weighted"):
            a = {h.id for h in front.search(q, text="haemorrhages exudates", mode=mode, k=10)}
            b = {h.id for h in single.search(code=q, text="haemorrhages exudates", mode=mode, k=10)}
            overlap[mode].append(len(a & b) / 10)
    a = {h.id for h in front.search(text="haemorrhages exudates", k=10)}
    b = {h.id for h in single.search(text="haemorrhages exudates", k=10)}
    overlap["text"].append(len(a & b) / 10)
    means = {m: float(np.mean(v)) for m, v in overlap.items()}
    print(f"top-10 overlap with one index over {SHARDS} shards: {means}")
    # Text: BM25 statistics are each shard's. RRF: ranks within a tie of
    # equal distance are the single index's document order, the front's id
    # order, and RRF turns ranks into scores.
    assert means["text"] >= 0.7 and means["weighted"] >= 0.5 and means["rrf"] >= 0.3, means


def test_image_queries_are_encoded_by_the_shards_encoder(cluster: None, tmp_path: Path) -> None:
    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    photos = root / "tests" / "fixtures" / "ingest" / "images"
    encoder = root / "plugin" / "models" / "ash-synfundus-48"
    schema = {**SCHEMA, "hash": {"name": "code", "bits": 48, "encoder": str(encoder)}}
    docs = [{"id": f"case-{i:02d}", "grade": i % 5, "image": str(photos / f"case-{i:02d}.png")} for i in range(10)]
    single = ash_search.Index.create(tmp_path / "single", schema)
    single.ingest(docs)
    layout = create(tmp_path / "sharded", schema, 2)
    assert ingest(layout, docs).total == 10
    front = ShardedSearch(layout.root, replicas=1, cpus_per_replica=0.25, timeout_s=60)
    try:
        query = photos / "case-04.png"
        want = pairs(single.search(image=query, k=10))
        same_answer(pairs(front.search(image=query, k=10)), want, 10)
        pixels = np.asarray(Image.open(query).convert("RGB"))
        same_answer(pairs(front.search(image=pixels, k=10)), want, 10)
        with pytest.raises(ash_search.InvalidInput):
            front.search(image=query, like="case-01")
    finally:
        front.close()


def test_a_killed_replica_is_replaced_and_no_answer_is_silently_partial(
    front: ShardedSearch, data: dict[str, Any]
) -> None:
    import ray

    single = data["single"]
    q = queries(30)
    expected = [pairs(single.search(code=c, k=10)) for c in q]
    victim = front.replicas[1][0]
    old_pid = ray.get(victim.pid.remote())
    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            i = n % len(q)
            n += 1
            try:
                result = front.search(q[i], k=10)
            except ShardUnavailableError:
                outcomes.append("refused")
                continue
            assert not result.partial
            same_answer(pairs(result), expected[i], 10)
            outcomes.append("complete")

    clients = [threading.Thread(target=load) for _ in range(3)]
    for t in clients:
        t.start()
    time.sleep(1.0)
    os.kill(old_pid, signal.SIGKILL)
    time.sleep(4.0)
    deadline = time.monotonic() + 90
    new_pid = None
    while time.monotonic() < deadline:
        try:
            new_pid = ray.get(victim.pid.remote(), timeout=5)
            break
        except Exception:  # still restarting
            time.sleep(0.5)
    time.sleep(1.0)
    stop.set()
    for t in clients:
        t.join()
    assert new_pid is not None and new_pid != old_pid, "Ray restarted the replica in a new process"
    assert outcomes.count("complete") > 50, outcomes.count("complete")
    # With a second replica per shard, every query is answered in full.
    assert "refused" not in outcomes


def test_a_shard_with_no_replica_left_is_refused_or_named(front: ShardedSearch, data: dict[str, Any]) -> None:
    import ray

    shard = 2
    saved = front.replicas[shard]
    down = ray.remote(num_cpus=0)(Dead).remote()
    front.replicas[shard] = [down, down]
    old_timeout = front.timeout_s
    front.timeout_s = 3.0
    try:
        with pytest.raises(ShardUnavailableError) as caught:
            front.search(queries(1)[0], k=5)
        assert caught.value.missing == [shard]
        result = front.search(queries(1)[0], k=5, allow_partial=True)
        assert result.partial and result.missing == [shard]
        assert all(shard_of(h.id, SHARDS) != shard for h in result)
    finally:
        front.replicas[shard] = saved
        front.timeout_s = old_timeout
        ray.kill(down)


class Dead:
    """A replica that never answers in time."""

    def search(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        time.sleep(3600)
        return []
