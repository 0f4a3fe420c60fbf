"""What to encode: image folders, CSV manifests and JSONL manifests, read
into one list of items in a fixed order.

The rules are those of ``ash-search ingest`` so that a distributed job and
an ingest of the same source give the same records:

* a folder: every file under it (sorted, hidden files left out); ids are
  file stems, or the ``id`` column of a metadata CSV keyed by its ``file``
  column (a path relative to the folder, or a bare file name);
* a JSONL manifest: one record per line (``schemas/record.schema.json``),
  ``image`` relative to the manifest's folder; a line that already has a
  ``code`` is passed through as it is;
* a CSV manifest: an ``image`` (or ``file``) column relative to the CSV's
  folder, an optional ``id`` column (else the file stem), the other columns
  metadata.

CSV cells are typed by the index configuration when one is given (integer,
float and boolean fields), else kept as strings. Problems with single
entries become error records with ingest's ``{"line", "id", "input",
"reason"}`` shape; an id given twice keeps its first entry.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SourceError

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "tif", "tiff", "bmp"})
MAX_ID_CHARS = 1024
MAX_LINE_BYTES = 4 << 20

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Item:
    """One image to encode (``path``), or a record that has its ``code``."""

    line: int
    input: str
    id: str
    path: str | None
    metadata: dict[str, Scalar] = field(default_factory=dict)
    code: str | None = None

    def key(self) -> list[Any]:
        """What the item's shard digest covers."""
        return [self.id, self.path, self.code, sorted(self.metadata.items())]


def error_record(line: int, item_id: str | None, input_: str, reason: str) -> dict[str, Any]:
    """An error in the shape ``ash-search ingest --errors`` writes."""
    return {"line": line, "id": item_id, "input": input_, "reason": reason}


@dataclass
class Source:
    """Items in order, and the entries refused while reading."""

    items: list[Item] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def field_kinds(index: Path | None) -> dict[str, str]:
    """Field name → type, from an index's ``ash-index.json`` (or a config file)."""
    if index is None:
        return {}
    path = index / "ash-index.json" if index.is_dir() else index
    try:
        config = json.loads(path.read_text())
        return {f["name"]: f["type"] for f in config["fields"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{path}: not an ash-search index configuration ({e})") from e


def typed(cell: str, kind: str | None) -> Scalar:
    """A CSV cell as its field wants it; a cell that does not parse stays a
    string, so that ``ingest`` names the problem (as ``ingest`` does)."""
    text = cell.strip()
    try:
        if kind == "integer":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        return cell
    if kind == "boolean":
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text.lower(), cell)
    return cell


def read_sources(paths: list[Path], metadata: Path | None = None, kinds: dict[str, str] | None = None) -> Source:
    """Reads every source in turn; ``metadata`` belongs to the folder sources."""
    kinds = kinds or {}
    out = Source()
    seen: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            entries = _folder(path, metadata, kinds, out.errors)
        elif path.suffix.lower() == ".jsonl":
            entries = _jsonl(path, out.errors)
        elif path.suffix.lower() == ".csv":
            entries = _csv(path, kinds, out.errors)
        else:
            raise SourceError(f"{path}: not a folder, a .csv or a .jsonl manifest")
        for item in entries:
            reason = _refusal(item, seen)
            if reason:
                out.errors.append(error_record(item.line, item.id or None, item.input, reason))
            else:
                seen[item.id] = f"{item.input}:{item.line}"
                out.items.append(item)
    return out


def _refusal(item: Item, seen: dict[str, str]) -> str | None:
    if not item.id:
        return "no id"
    if len(item.id) > MAX_ID_CHARS:
        return f"id longer than {MAX_ID_CHARS} characters"
    if item.id in seen:
        return f"id {item.id!r} was already given by {seen[item.id]}; the first is kept"
    if item.path is not None and ("\n" in item.path or "\r" in item.path):
        return "the image path contains a line break"
    return None


def _folder(dir_: Path, metadata: Path | None, kinds: dict[str, str], errors: list[dict[str, Any]]) -> Iterator[Item]:
    rows = _metadata_rows(metadata, kinds) if metadata else {}
    skip = metadata.resolve() if metadata else None
    files = sorted(
        p
        for p in dir_.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(dir_).parts) and p.resolve() != skip
    )
    for i, path in enumerate(files, start=1):
        rel = path.relative_to(dir_).as_posix()
        row = rows.pop(rel, None) or rows.pop(path.name, None)
        meta = dict(row[1]) if row else {}
        item_id = str(meta.pop("id", path.stem))
        ext = path.suffix.lower().lstrip(".")
        if ext not in IMAGE_EXTENSIONS:
            shown = ", ".join(sorted(IMAGE_EXTENSIONS))
            reason = f"unsupported format (extension {ext!r}; images are {shown})"
            errors.append(error_record(i, item_id, str(path), reason))
            continue
        yield Item(line=i, input=str(path), id=item_id, path=str(path.resolve()), metadata=meta)
    for name, (line, _) in sorted(rows.items(), key=lambda kv: kv[1][0]):
        errors.append(error_record(line, None, str(metadata), f"metadata row for {name!r}: no such image in {dir_}"))


def _metadata_rows(path: Path, kinds: dict[str, str]) -> dict[str, tuple[int, dict[str, Scalar]]]:
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            headers = next(reader, [])
            key = headers.index("file") if "file" in headers else 0
            rows: dict[str, tuple[int, dict[str, Scalar]]] = {}
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(headers):
                    raise SourceError(f"{path}: line {line} has {len(cells)} cells, the header {len(headers)}")
                values = {
                    h: typed(c, kinds.get(h))
                    for j, (h, c) in enumerate(zip(headers, cells, strict=True))
                    if j != key and c
                }
                if cells[key] in rows:
                    raise SourceError(f"{path}: line {line}: file {cells[key]!r} appears twice")
                rows[cells[key]] = (line, values)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: {e}") from e


def _csv(path: Path, kinds: dict[str, str], errors: list[dict[str, Any]]) -> Iterator[Item]:
    base = path.parent
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            headers = next(reader, [])
            column = next((c for c in ("image", "file") if c in headers), None)
            if column is None:
                raise SourceError(f"{path}: no `image` (or `file`) column in {headers}")
            at = headers.index(column)
            for line, cells in enumerate(reader, start=2):
                if not any(cells):
                    continue
                if len(cells) != len(headers):
                    reason = f"{len(cells)} cells, the header has {len(headers)}"
                    errors.append(error_record(line, None, str(path), reason))
                    continue
                meta = {
                    h: typed(c, kinds.get(h))
                    for j, (h, c) in enumerate(zip(headers, cells, strict=True))
                    if j != at and c
                }
                image = base / cells[at]
                item_id = str(meta.pop("id", Path(cells[at]).stem))
                yield Item(line=line, input=str(path), id=item_id, path=str(image.resolve()), metadata=meta)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: {e}") from e


def _jsonl(path: Path, errors: list[dict[str, Any]]) -> Iterator[Item]:
    base = path.parent
    try:
        f = path.open("rb")
    except OSError as e:
        raise SourceError(f"{path}: {e}") from e
    with f:
        for line, raw in enumerate(f, start=1):
            if len(raw) > MAX_LINE_BYTES:
                errors.append(error_record(line, None, str(path), f"line longer than {MAX_LINE_BYTES} bytes"))
                continue
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                errors.append(error_record(line, None, str(path), f"not a JSON object: {e}"))
                continue
            item, reason = _record_item(value, line, path, base)
            if reason:
                item_id = value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None
                errors.append(error_record(line, item_id, str(path), reason))
            elif item:
                yield item


def _record_item(value: Any, line: int, path: Path, base: Path) -> tuple[Item | None, str | None]:
    if not isinstance(value, dict):
        return None, "not a JSON object"
    item_id = value.get("id")
    if not isinstance(item_id, str):
        return None, "`id` must be a string"
    image, code = value.get("image"), value.get("code")
    if (image is None) == (code is None):
        return None, "give exactly one of `image` and `code`"
    if not isinstance(image if image is not None else code, str):
        return None, "`image` and `code` must be strings"
    meta = {k: v for k, v in value.items() if k not in ("id", "image", "code")}
    if any(isinstance(v, dict | list) for v in meta.values()):
        return None, "metadata values must be strings, numbers, booleans or null"
    resolved = str((base / image).resolve()) if image is not None else None
    return Item(line=line, input=str(path), id=item_id, path=resolved, metadata=meta, code=code), None
