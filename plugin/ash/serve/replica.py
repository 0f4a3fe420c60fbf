"""One shard replica: a Ray actor holding one shard's index open read-only.

Ray restarts a replica whose process dies (``max_restarts``); calls that
were running on it fail, and the front (:mod:`ash.serve.front`) sends them
to another replica of the same shard. The actor itself never retries.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class ShardReplica:
    """Serves searches over one shard (wrapped by ``ray.remote`` in
    :func:`ash.serve.front.replica_class`)."""

    def __init__(self, path: str) -> None:
        import ash_search

        self._index = ash_search.Index.open(path, read_only=True)

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        """The Ray node this replica runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def ready(self) -> int:
        """Live documents; answering at all says the replica is up."""
        return len(self._index)

    def reload(self) -> int:
        """Sees the shard's latest commit (after an update)."""
        self._index.commit()
        return len(self._index)

    def code(self, doc_id: str) -> bytes | None:
        """The code of ``doc_id``, or None when this shard has no such id."""
        import ash_search

        try:
            return self._index.code(doc_id).tobytes()
        except ash_search.NotFound:
            return None

    def encode(self, image: str | np.ndarray) -> bytes:
        """An image's code by this shard's pinned encoder (every shard pins
        the same one): a file where the replica runs, or pixels."""
        return self._index.encoder().encode([image])[0].tobytes()

    def search(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """One search, hits as plain dicts."""
        result = self._index.search(**query)
        return [{"id": h.id, "distance": h.distance, "score": h.score, "fields": h.fields} for h in result]

    def sides(self, image: dict[str, Any], text: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The two rankings a fused search fuses, for the front to fuse
        over every shard: the image side and the text side."""
        return self.search(image), self.search(text)

    def search_many(self, codes: bytes, n: int, k: int, radius: int | None) -> tuple[list[list[str]], np.ndarray]:
        array = np.frombuffer(codes, np.uint8).reshape(n, -1)
        return self._index.search_many(array, k=k, radius=radius)
