"""Type stubs of the Rust core; use the wrappers in ``ash_search``."""

from os import PathLike

_Path = str | PathLike[str]
#: Packed codes end to end, and per image None or (its ash_search.errors class, reason).
_Coded = tuple[bytes, list[tuple[str, str] | None]]

__version__: str

class Encoder:
    @staticmethod
    def open(dir: _Path, device: str = "auto", threads: int = 0) -> Encoder: ...
    @property
    def bits(self) -> int: ...
    def describe(self) -> str: ...
    def encode_paths(self, paths: list[str], batch: int) -> _Coded: ...
    def encode_pixels(self, pixels: bytes, n: int, height: int, width: int, channels: int) -> _Coded: ...

class Index:
    @staticmethod
    def create(path: _Path, config: str) -> Index: ...
    @staticmethod
    def open(path: _Path, read_only: bool) -> Index: ...
    @property
    def path(self) -> str: ...
    @property
    def bits(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    def __len__(self) -> int: ...
    def encoder(self, device: str = "auto") -> Encoder: ...
    def ingest_jsonl(
        self,
        jsonl: bytes,
        base: str,
        first_line: int,
        images: bool,
        encoder: Encoder | None,
        batch: int,
        commit_every: int,
        skip_existing: bool,
    ) -> str: ...
    def delete(self, ids: list[str]) -> int: ...
    def commit(self) -> None: ...
    def search(
        self,
        code: str | None,
        image: str | None,
        like: str | None,
        text: str | None,
        filter: str | None,
        mode: str | None,
        k: int | None,
        radius: int | None,
        weight: float | None,
        depth: int | None,
        explain: bool,
    ) -> str: ...
    def code(self, id: str) -> bytes: ...
    def search_many(self, codes: bytes, k: int, radius: int | None) -> tuple[list[list[str]], list[list[int]]]: ...
