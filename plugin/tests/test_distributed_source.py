"""``ash.distributed``'s reading and sharding, without a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ash.distributed import JobMismatchError, SourceError
from ash.distributed.shards import Output, plan
from ash.distributed.source import Item, read_sources


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_a_folder_with_a_metadata_sheet_reads_like_ingest(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    touch(folder / "b.png")
    touch(folder / "sub" / "a.jpg")
    touch(folder / ".hidden.png")
    touch(folder / "notes.txt")
    sheet = tmp_path / "meta.csv"
    sheet.write_text("file,id,grade,eye,referable\nsub/a.jpg,case-a,3,OD,yes\nb.png,,1,OS,no\nmissing.png,x,0,OD,no\n")
    kinds = {"grade": "integer", "eye": "keyword", "referable": "boolean"}
    src = read_sources([folder], sheet, kinds)
    assert [(i.id, i.metadata) for i in src.items] == [
        ("b", {"grade": 1, "eye": "OS", "referable": False}),
        ("case-a", {"grade": 3, "eye": "OD", "referable": True}),
    ]
    assert src.items[1].path == str((folder / "sub" / "a.jpg").resolve())
    reasons = {e["input"]: e["reason"] for e in src.errors}
    assert "unsupported format" in reasons[str(folder / "notes.txt")]
    assert "missing.png" in reasons[str(sheet)]
    assert all(set(e) == {"line", "id", "input", "reason"} for e in src.errors)


def test_manifests_keep_types_pass_codes_through_and_refuse_what_ingest_would(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    lines = [
        {"id": "a", "image": "imgs/a.png", "grade": 2, "report": "exudates"},
        {"id": "coded", "code": "00ff00ff00ff"},
        {"id": "a", "image": "imgs/other.png"},
        {"image": "imgs/c.png"},
        {"id": "both", "image": "x.png", "code": "00"},
        {"id": "nested", "image": "x.png", "extra": {"no": 1}},
        {"id": "break", "image": "x\n.png"},
    ]
    manifest.write_text("\n".join(json.dumps(v) for v in lines) + "\nnot json\n\n")
    csv_manifest = tmp_path / "n.csv"
    csv_manifest.write_text("image,grade\nimgs/d.png,4\nimgs/e.png\n")
    src = read_sources([manifest, csv_manifest], kinds={"grade": "integer"})
    assert [(i.id, i.code, i.metadata) for i in src.items] == [
        ("a", None, {"grade": 2, "report": "exudates"}),
        ("coded", "00ff00ff00ff", {}),
        ("d", None, {"grade": 4}),
    ]
    assert src.items[0].path == str((tmp_path / "imgs" / "a.png").resolve())
    by_line = {(Path(e["input"]).name, e["line"]): e["reason"] for e in src.errors}
    assert "already given by" in by_line[("m.jsonl", 3)]
    assert "`id` must be a string" in by_line[("m.jsonl", 4)]
    assert "exactly one" in by_line[("m.jsonl", 5)]
    assert "metadata values" in by_line[("m.jsonl", 6)]
    assert "line break" in by_line[("m.jsonl", 7)]
    assert "not a JSON object" in by_line[("m.jsonl", 8)]
    assert "cells" in by_line[("n.csv", 3)]


def test_an_unreadable_source_stops_the_job(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.jsonl"):
        read_sources([tmp_path / "nope.jsonl"])
    with pytest.raises(SourceError, match="not a folder"):
        read_sources([touch(tmp_path / "a.png")])
    bad = tmp_path / "m.csv"
    bad.write_text("path,grade\nx.png,1\n")
    with pytest.raises(SourceError, match="no `image`"):
        read_sources([bad])


def test_the_output_folder_refuses_another_job(tmp_path: Path) -> None:
    items = [Item(i, "m.jsonl", f"id{i}", f"/x/{i}.png") for i in range(5)]
    encoder = {"name": "e", "version": "1", "bits": 48, "manifest_sha256": "a" * 64}
    out = Output(tmp_path / "out")
    shards = plan(items, 2)
    assert out.open(encoder, shards, 2) == set()
    out.write_shard(1, [{"id": "id2", "code": "00"}], [])
    (tmp_path / "out" / ".codes-00000.jsonl.abc.tmp").write_text("half")
    assert out.open(encoder, shards, 2) == {1}
    assert not list((tmp_path / "out").glob(".*.tmp")), "leftovers removed"
    with pytest.raises(JobMismatchError, match="encoder"):
        out.open({**encoder, "manifest_sha256": "b" * 64}, shards, 2)
    with pytest.raises(JobMismatchError, match="shard-size"):
        out.open(encoder, plan(items, 3), 3)
    changed = [*items[:3], Item(3, "m.jsonl", "id3", "/x/changed.png"), items[4]]
    with pytest.raises(JobMismatchError, match="shard 1 differs"):
        out.open(encoder, plan(changed, 2), 2)
    with pytest.raises(JobMismatchError, match="3 shards, now 2"):
        out.open(encoder, plan(items[:4], 2), 2)


def test_the_package_docstring_example_runs() -> None:
    import doctest

    import ash.distributed

    result = doctest.testmod(ash.distributed)
    assert result.attempted > 0 and result.failed == 0
