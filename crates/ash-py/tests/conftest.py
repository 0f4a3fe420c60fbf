"""Shared fixtures: the release binary, the shipped encoder, the ingest
fixtures, and indexes built by the CLI and by the bindings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
BINARY = ROOT / "target" / "release" / "ash-search"
ENCODER = ROOT / "plugin" / "models" / "ash-synfundus-48"
FIXTURES = ROOT / "tests" / "fixtures" / "ingest"
SCHEMA = {
    "fields": [
        {"name": "id", "type": "keyword", "stored": True},
        {"name": "patient_id", "type": "keyword", "stored": True},
        {"name": "eye", "type": "keyword", "stored": True},
        {"name": "modality", "type": "keyword", "stored": True},
        {"name": "grade", "type": "integer", "stored": True, "fast": True},
        {"name": "report", "type": "text", "stored": True},
        {"name": "acquired", "type": "date", "stored": True},
    ],
    "hash": {"name": "code", "bits": 48, "encoder": str(ENCODER)},
}


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: build it with `cargo build --release` (or run `make test`)")
    return subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True, check=False)


def fixture_records() -> list[dict[str, object]]:
    """The fixture's records that are JSON (one line is not)."""
    out = []
    for line in (FIXTURES / "records.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@pytest.fixture(scope="session")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture records ingested by `ash-search ingest`."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    index = folder / "index"
    made = cli("init", index, "--schema", folder / "schema.json")
    assert made.returncode == 0, made.stderr
    cli("ingest", index, FIXTURES / "records.jsonl", "--quiet")  # exits 1: some records are refused
    assert (index / "ash-index.json").is_file()
    return index


def random_codes(n: int, nbytes: int, seed: int) -> np.ndarray:
    """Clustered codes: 50 centres, a few bits flipped each."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (50, nbytes), dtype=np.uint8)
    codes = centres[rng.integers(0, 50, n)]
    flips = np.packbits(rng.random((n, nbytes * 8)) < 0.06, axis=1)
    return codes ^ flips
