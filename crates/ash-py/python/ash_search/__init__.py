"""``ash_search``: exact Hamming-space image retrieval from Python.

The index of the ``ash-search`` CLI and server, opened in-process: create or
open an index directory, ingest records (codes or images), delete, search by
code, image, example id, text and filter, and run batches of k-NN queries
from numpy. :class:`Encoder` turns images into the same packed codes.

>>> import numpy as np, tempfile, ash_search
>>> index = ash_search.Index.create(tempfile.mkdtemp() + "/idx", {
...     "fields": [{"name": "id", "type": "keyword", "stored": True},
...                {"name": "eye", "type": "keyword", "stored": True}],
...     "hash": {"name": "code", "bits": 16}})
>>> index.ingest([{"id": "a", "eye": "OD", "code": bytes([0xF0, 0x0F])},
...               {"id": "b", "eye": "OS", "code": "f00e"}]).indexed
2
>>> [(h.id, h.distance) for h in index.search(code=np.array([0xF0, 0x0F], np.uint8), k=2)]
[('a', 0), ('b', 1)]

How it works: the Rust core (``ash_search._native``) does the work with the
GIL released, so searches from several threads run in parallel and a search
goes on while another thread ingests (it sees the last commit). This module
turns Python values into what the core takes (records into JSONL, codes into
hex or packed bytes, numpy images into raw pixels) and results into typed
ones. Failures are the classes of :mod:`ash_search.errors`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import errors
from ._native import Encoder as _NativeEncoder
from ._native import Index as _NativeIndex
from .errors import AshError, Busy, Conflict, Corrupt, Internal, InvalidInput, IoError, NotFound, Unavailable

__all__ = [
    "AshError",
    "Busy",
    "Conflict",
    "Corrupt",
    "Encoder",
    "Hit",
    "Index",
    "IngestReport",
    "Internal",
    "InvalidInput",
    "IoError",
    "NotFound",
    "RecordError",
    "SearchResult",
    "Unavailable",
    "errors",
]

#: Records indexed between commits (and per call into the core).
COMMIT_EVERY = 10_000

#: A query or record code: packed bytes, hex, or a numpy ``uint8`` row.
Code = Union[bytes, bytearray, str, "npt.NDArray[np.uint8]"]
#: An image: a file, or an ``H×W×3`` (RGB) or ``H×W`` (grey) ``uint8`` array.
ImageLike = Union[str, os.PathLike, "npt.NDArray[np.uint8]"]


def _use_python_onnxruntime() -> None:
    """Points the core at this interpreter's ``onnxruntime`` package, unless
    ``ORT_DYLIB_PATH`` says otherwise (the core finds ONNX Runtime at run
    time; without either it looks where the CLI does)."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        libs = sorted((Path(folder) / "capi").glob("libonnxruntime.so*"))
        if libs:
            os.environ["ORT_DYLIB_PATH"] = str(libs[-1])
            return


_use_python_onnxruntime()


@dataclass(frozen=True)
class Hit:
    """One result: the document's id, its Hamming distance to the query code
    (``None`` for a text-only search), the ranking score and its stored
    fields."""

    id: str
    distance: int | None
    score: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class SearchResult(Sequence[Hit]):
    """The hits of a search, best first; a sequence of :class:`Hit`. With
    ``explain=True``, ``explain`` says how each segment was searched."""

    hits: list[Hit]
    took_ms: float
    explain: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:  # type: ignore[override]
        return self.hits[i]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)


@dataclass(frozen=True)
class RecordError:
    """A record that was not indexed: its number in the input (from 1), its
    id when it has one, and why."""

    line: int
    id: str | None
    reason: str


@dataclass
class IngestReport:
    """What :meth:`Index.ingest` did and where its time went."""

    indexed: int = 0
    failed: int = 0
    skipped: int = 0
    images: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    index_seconds: float = 0.0
    errors: list[RecordError] = field(default_factory=list)

    def _add(self, core: dict[str, Any]) -> None:
        r = core["report"]
        for name in ("indexed", "failed", "skipped", "images", "seconds", "encode_seconds", "index_seconds"):
            setattr(self, name, getattr(self, name) + r[name])
        self.errors.extend(RecordError(e["line"], e["id"], e["reason"]) for e in core["errors"])


def _hex(code: Code, nbytes: int) -> str:
    """A code as the core's hex, from bytes, hex or a numpy ``uint8`` row."""
    if isinstance(code, str):
        return code
    if isinstance(code, (bytes, bytearray)):
        return bytes(code).hex()
    if isinstance(code, np.ndarray):
        if code.dtype != np.uint8 or code.ndim != 1:
            raise InvalidInput(f"code: a 1-D uint8 row of {nbytes} bytes, got {code.dtype} {code.shape}")
        return code.tobytes().hex()
    raise InvalidInput(f"code: bytes, hex or a numpy uint8 row, not {type(code).__name__}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not a record value")


class Encoder:
    """An encoder plugin (``manifest.json`` + ``model.onnx``): images →
    packed codes, exactly as ``ash-search encode`` makes them."""

    def __init__(self, native: _NativeEncoder) -> None:
        self._native = native

    @classmethod
    def open(cls, dir: str | os.PathLike[str], device: str = "auto", threads: int = 0) -> Encoder:
        """Loads the plugin in ``dir``; ``device`` is ``auto`` (CUDA when
        ONNX Runtime has it), ``cpu`` or ``cuda``; ``threads`` 0 is one per
        core."""
        return cls(_NativeEncoder.open(os.fspath(dir), device, threads))

    @property
    def bits(self) -> int:
        """Bits per code."""
        return self._native.bits

    def describe(self) -> str:
        """Which model, from where, on which device."""
        return self._native.describe()

    def encode(self, images: Iterable[ImageLike] | npt.NDArray[np.uint8], batch: int = 32) -> npt.NDArray[np.uint8]:
        """Packed codes ``(n, ceil(bits/8))`` of ``images``, in order:
        files, or numpy ``uint8`` images (``H×W×3`` RGB or ``H×W`` grey; a
        stacked ``n×H×W[×3]`` array is n images). Raises
        :class:`InvalidInput` naming every image that has no code."""
        width = (self.bits + 7) // 8
        items = list(images)
        codes = np.zeros((len(items), width), np.uint8)
        failures: list[tuple[int, str, str]] = []
        paths = [(i, os.fspath(x)) for i, x in enumerate(items) if not isinstance(x, np.ndarray)]
        if paths:
            packed, why = self._native.encode_paths([p for _, p in paths], batch)
            self._collect(codes, [i for i, _ in paths], packed, why, failures)
        arrays: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(items):
            if isinstance(x, np.ndarray):
                arrays.setdefault(x.shape, []).append(i)
        for shape, positions in arrays.items():
            if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
                raise InvalidInput(f"images: an image array is H×W×3 or H×W, got shape {shape}")
            stack = np.ascontiguousarray(np.stack([items[i] for i in positions]))
            if stack.dtype != np.uint8:
                raise InvalidInput(f"images: pixels are uint8, got {stack.dtype}")
            channels = 1 if len(shape) == 2 else 3
            packed, why = self._native.encode_pixels(stack.tobytes(), len(positions), shape[0], shape[1], channels)
            self._collect(codes, positions, packed, why, failures)
        if failures:
            first = failures[0]
            shown = "; ".join(f"image {i}: {reason}" for i, _, reason in failures[:5])
            cls = getattr(errors, first[1], InvalidInput)  # the core names the class
            err = cls(f"{len(failures)} image(s) have no code: {shown}")
            err.failures = failures  # type: ignore[attr-defined]
            raise err
        return codes

    def _collect(
        self,
        codes: npt.NDArray[np.uint8],
        positions: list[int],
        packed: bytes,
        why: list[tuple[str, str] | None],
        failures: list[tuple[int, str, str]],
    ) -> None:
        rows = np.frombuffer(bytes(packed), np.uint8).reshape(len(positions), codes.shape[1])
        codes[positions] = rows
        failures.extend((positions[j], w[0], w[1]) for j, w in enumerate(why) if w is not None)


class Index:
    """An ash-search index directory: the one ``ash-search init`` makes and
    the CLI, the server and this class all open."""

    def __init__(self, native: _NativeIndex) -> None:
        self._native = native
        self._width = (native.bits + 7) // 8

    @classmethod
    def create(cls, path: str | os.PathLike[str], schema: Mapping[str, Any]) -> Index:
        """Creates an index in ``path`` from its configuration (the JSON of
        ``ash-search init``: ``fields`` and ``hash``, see
        ``schemas/index.schema.json``)."""
        return cls(_NativeIndex.create(os.fspath(path), json.dumps(schema)))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> Index:
        """Opens the index in ``path``; ``read_only`` refuses every write
        (:class:`Conflict`)."""
        return cls(_NativeIndex.open(os.fspath(path), read_only))

    @property
    def path(self) -> Path:
        return Path(self._native.path)

    @property
    def bits(self) -> int:
        """Bits per code."""
        return self._native.bits

    def __len__(self) -> int:
        """Live documents in the last commit this object sees."""
        return len(self._native)

    def encoder(self, device: str = "auto") -> Encoder:
        """The index's own encoder (the plugin it pinned)."""
        return Encoder(self._native.encoder(device))

    def ingest(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        encoder: Encoder | None = None,
        batch: int = 32,
        commit_every: int = COMMIT_EVERY,
        skip_existing: bool = False,
        base: str | os.PathLike[str] | None = None,
    ) -> IngestReport:
        """Indexes records: dicts with an ``id``, the index's fields, and a
        ``code`` (bytes, hex or a numpy ``uint8`` row) or an ``image`` (a
        path, relative to ``base`` or the current directory) that the
        index's encoder (or ``encoder``) encodes. A record with an existing
        id replaces it. Commits every ``commit_every`` records and at the
        end. Records the index refuses are in the report's ``errors``; a
        value that is not JSON raises :class:`InvalidInput` before anything
        of its ``commit_every`` block is written."""
        if commit_every < 1 or batch < 1:
            raise InvalidInput("commit_every and batch are at least 1")
        base_dir = os.fspath(base) if base is not None else os.getcwd()
        report = IngestReport()
        it = iter(records)
        first = 1
        while True:
            block = list(islice(it, commit_every))
            if not block:
                return report
            jsonl, images = self._jsonl(block, first)
            core = self._native.ingest_jsonl(
                jsonl,
                base_dir,
                first,
                images,
                encoder._native if encoder is not None else None,
                batch,
                commit_every,
                skip_existing,
            )
            report._add(json.loads(core))
            first += len(block)

    def _jsonl(self, block: list[Mapping[str, Any]], first: int) -> tuple[bytes, bool]:
        lines = []
        images = False
        for n, record in enumerate(block, first):
            if not isinstance(record, Mapping):
                raise InvalidInput(f"record {n}: a record is a dict, not {type(record).__name__}")
            row = dict(record)
            if "code" in row and row["code"] is not None:
                row["code"] = _hex(row["code"], self._width)
            if "image" in row:
                images = True
                if isinstance(row["image"], os.PathLike):
                    row["image"] = os.fspath(row["image"])
            try:
                lines.append(json.dumps(row, default=_jsonable, allow_nan=False))
            except (TypeError, ValueError, RecursionError) as e:
                raise InvalidInput(f"record {n}: {e}") from None
        return ("\n".join(lines) + "\n").encode(), images

    def delete(self, ids: Iterable[str]) -> int:
        """Deletes the documents with these ids (gone for searches after
        :meth:`commit`); returns how many of them a live document had."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if not all(isinstance(i, str) for i in ids):
            raise InvalidInput("ids are strings")
        return self._native.delete(ids)

    def commit(self) -> None:
        """Commits the deletions made, and sees every commit made so far
        (by this object or another process)."""
        self._native.commit()

    def search(
        self,
        code: Code | None = None,
        *,
        image: ImageLike | None = None,
        like: str | None = None,
        text: str | None = None,
        filter: str | None = None,
        mode: str = "filter",
        k: int = 10,
        radius: int | None = None,
        weight: float | None = None,
        depth: int | None = None,
        explain: bool = False,
    ) -> SearchResult:
        """One search, as ``ash-search search`` runs it: by a ``code``, an
        ``image`` (a file or numpy array, encoded with the index's encoder)
        or an indexed document's id (``like``), and/or ``text`` (BM25),
        restricted by ``filter`` (tantivy query syntax); ``mode`` ``filter``,
        ``rrf`` or ``weighted`` says how text and image rank together."""
        code_hex = None if code is None else _hex(code, self._width)
        image_path = None
        if isinstance(image, np.ndarray):
            if code_hex is not None or like is not None:
                raise InvalidInput("give one of image, code and like, not several")
            code_hex = self.encoder().encode([image])[0].tobytes().hex()
        elif image is not None:
            image_path = os.fspath(image)
        for name, value in (("k", k), ("radius", radius), ("depth", depth)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
                raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        out = json.loads(
            self._native.search(code_hex, image_path, like, text, filter, mode, k, radius, weight, depth, explain)
        )
        hits = [Hit(h["id"], h["distance"], h["score"], h["fields"]) for h in out["hits"]]
        return SearchResult(hits, out["took_ms"], out.get("explain"))

    def code(self, id: str) -> npt.NDArray[np.uint8]:
        """The packed code of the live document ``id`` (:class:`NotFound`
        when there is none)."""
        return np.frombuffer(bytes(self._native.code(id)), np.uint8).copy()

    def search_many(
        self, codes: npt.NDArray[np.uint8] | Sequence[bytes], k: int = 10, radius: int | None = None
    ) -> tuple[list[list[str]], npt.NDArray[np.int64]]:
        """k-NN for a batch of query codes (an ``(n, ceil(bits/8))`` numpy
        ``uint8`` array of packed codes, or a list of bytes), in parallel.
        Returns each query's ids, nearest first (ties by index order), and
        their distances as an ``(n, k)`` array, ``-1`` past the hits found
        (fewer than k live documents, or none within ``radius``)."""
        if isinstance(codes, np.ndarray):
            if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != self._width:
                raise InvalidInput(f"codes: an (n, {self._width}) uint8 array, got {codes.dtype} {codes.shape}")
            packed = np.ascontiguousarray(codes).tobytes()
        else:
            packed = b"".join(bytes(c) for c in codes)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be at least 1, got {k!r}")
        if radius is not None and (not isinstance(radius, (int, np.integer)) or radius < 0):
            raise InvalidInput(f"radius must be a whole number, got {radius!r}")
        ids, distances = self._native.search_many(packed, int(k), radius)
        out = np.full((len(ids), int(k)), -1, np.int64)
        for row, d in enumerate(distances):
            out[row, : len(d)] = d
        return ids, out
