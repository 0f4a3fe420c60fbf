"""One shard on one worker: its images through ``ash-search encode``.

Workers run the product's own binary rather than a Python re-implementation
of its preprocessing, so a code made on the cluster is the code
``ash-search ingest`` or the server would make for the same file, by
construction (EXIF orientation, colour conversion, 16-bit scaling, the
resize filter and the integrity checks included). The file list goes
through ``--files-from``, so a shard of any size fits; the encoder's
threads (and its decoder pool, ``RAYON_NUM_THREADS``) are held to the CPUs
the task was given. The child is killed with its worker (Linux
``PR_SET_PDEATHSIG``), so a worker Ray loses does not leave an encoder
running beside the retry.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EncoderError, ShardCrashedError, ShardOutputError
from .shards import Shard
from .source import error_record

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class EncoderSettings:
    """How every worker runs the encoder."""

    binary: str
    encoder: str
    device: str = "cpu"
    threads: int = 1
    batch: int = 32
    max_side: int = 16384
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ShardResult:
    index: int
    records: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    images: int
    seconds: float
    host: str
    pid: int


def encoder_identity(encoder: Path) -> dict[str, Any]:
    """What ``job.json`` records of the encoder (as the index pins it)."""
    try:
        raw = (encoder / "manifest.json").read_bytes()
        manifest = json.loads(raw)
        return {
            "name": manifest["name"],
            "version": manifest["version"],
            "bits": manifest["bits"],
            "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EncoderError(f"{encoder}: not an encoder plugin ({e})") from e


def find_binary(given: str | None) -> str:
    """``given``, else ``ash-search`` on PATH, else this checkout's release build."""
    candidates = [given] if given else [shutil.which("ash-search"), _checkout_binary()]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(Path(c).resolve())
    raise EncoderError(
        f"the ash-search binary was not found ({given or 'PATH, then target/release'}); "
        "build it with `cargo build --release` and give --binary"
    )


def _checkout_binary() -> str:
    return str(Path(__file__).resolve().parents[3] / "target" / "release" / "ash-search")


# Looked up once here: the hook below runs in the forked child, where as
# little as possible should happen before exec.
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def encode_shard(shard: Shard, settings: EncoderSettings) -> ShardResult:
    """Encodes a shard's images; records in item order, failed images as errors."""
    started = time.monotonic()
    images = [i for i in shard.items if i.path is not None]
    outputs = _run_encoder([i.path for i in images], shard.index, settings) if images else []
    by_item = dict(zip((id(i) for i in images), outputs, strict=True))
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in shard.items:
        if item.path is None:
            records.append({"id": item.id, "code": item.code, **item.metadata})
            continue
        out = by_item[id(item)]
        if "code" in out:
            records.append({"id": item.id, "code": out["code"], **item.metadata})
        else:
            reason = str(out.get("error"))
            if Path(item.input).resolve() != Path(item.path):  # a manifest line: name the image
                reason = f"{item.path}: {reason}"
            errors.append(error_record(item.line, item.id, item.input, reason))
    return ShardResult(
        index=shard.index,
        records=records,
        errors=errors,
        images=len(images),
        seconds=time.monotonic() - started,
        host=socket.gethostname(),
        pid=os.getpid(),
    )


def _run_encoder(paths: list[str], index: int, s: EncoderSettings) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix=f"ash-shard-{index:05d}-") as tmp:
        listing = Path(tmp) / "files.txt"
        listing.write_text("".join(p + "\n" for p in paths))
        command = [
            s.binary, "encode", "--json", "--encoder", s.encoder, "--device", s.device,
            "--threads", str(s.threads), "--batch", str(s.batch), "--max-side", str(s.max_side),
            "--files-from", str(listing),
        ]  # fmt: skip
        env = {**os.environ, "RAYON_NUM_THREADS": str(s.threads), **s.env}
        proc = subprocess.run(command, capture_output=True, env=env, preexec_fn=_die_with_parent, check=False)
    stderr = proc.stderr.decode(errors="replace").strip()
    tail = stderr[-2000:]
    if proc.returncode < 0:
        raise ShardCrashedError(f"shard {index}: ash-search encode died from signal {-proc.returncode}: {tail}")
    if proc.returncode not in (0, 1):
        raise EncoderError(f"ash-search encode exited {proc.returncode}: {tail}")
    try:
        outputs = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError) as e:
        raise ShardOutputError(f"shard {index}: unreadable encoder output ({e})") from e
    if len(outputs) != len(paths) or any(o.get("file") != p for o, p in zip(outputs, paths, strict=False)):
        raise ShardOutputError(f"shard {index}: {len(outputs)} results for {len(paths)} files, or out of order: {tail}")
    return outputs
