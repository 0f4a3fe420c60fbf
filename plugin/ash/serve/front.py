"""The front of a sharded index on Ray: fans each query out to one replica
of every shard and merges the answers exactly.

How it works: :class:`ShardedSearch` starts ``replicas`` actors
(:class:`~ash.serve.replica.ShardReplica`) per shard, spread over the
cluster's nodes, each holding its shard open read-only. A query goes to one
replica of each shard, chosen in turn; a replica that dies mid-call (its
process killed, its node lost) is restarted by Ray, and the call goes to the
shard's next replica, then once more to the first after its restart. A shard
that still has no answer by the deadline makes the query fail with
:class:`ShardUnavailableError` naming it, or, with ``allow_partial=True``,
return what the other shards found with the missing shards named in the
result: never a partial answer that does not say so.

Merging. Each shard answers the query as a single index would over its own
documents, with the same k. For image k-NN, radius search and filtered
search (``mode="filter"`` with a ``filter``) the global answer is the k
best of the shards' answers by distance, then id: exactly the single
index's hits (which orders ties within a distance by its own document
order, so the ids among a tie at the k-th distance may differ; the
distances never do). ``rrf`` is fused here, not per shard: each shard
gives its image ranking and its text ranking to the fusion depth, the
front merges each side over the shards and fuses the global ranks, so the
image side is exact. Text takes part through BM25, whose statistics (how
rare a term is) are each shard's own: the text side, a text-only search
and the text tie-break of ``mode="filter"`` rank by per-shard scores, and
``weighted`` (which needs every candidate's score on both sides) fuses per
shard, so those can differ from one index (measured in the tests).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ash_search
import numpy as np

from .replica import ShardReplica
from .shards import Layout, load, shard_of

#: The rank constant of reciprocal rank fusion (``ash_tantivy::hybrid::RRF_K``).
RRF_K = 60.0


class ShardUnavailableError(RuntimeError):
    """No replica of some shards answered by the deadline."""

    def __init__(self, missing: list[int]) -> None:
        super().__init__(f"no replica of shard(s) {missing} answered; the answer would be partial")
        self.missing = missing


@dataclass(frozen=True)
class ShardedResult(ash_search.SearchResult):
    """:class:`ash_search.SearchResult` of the merged hits; ``missing``
    names the shards left out (only ever non-empty with
    ``allow_partial=True``)."""

    missing: list[int] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.missing)


#: The ``ash`` package, which Ray ships to the replicas' workers.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def runtime_env() -> dict[str, Any]:
    """What ``ray.init`` needs so that the replicas' workers can import this
    package (Ray uploads local folders per job only); ``ash_search`` must be
    installed where they run."""
    return {"py_modules": [str(PACKAGE_DIR)], "excludes": ["__pycache__"]}


def replica_class(cpus: float) -> Any:
    """The replica as a Ray actor class: restarted whenever it dies, its
    calls never retried by Ray (the front chooses where they go again)."""
    import ray

    return ray.remote(num_cpus=cpus, max_restarts=-1, max_task_retries=0)(ShardReplica)


def _merge_key(mode: str, has_code: bool) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if has_code and mode == "filter":
        return lambda h: (h["distance"], -h["score"], h["id"])
    return lambda h: (-h["score"], h["id"])


class ShardedSearch:
    """Search over a sharded index on the Ray cluster this process is
    connected to (``ray.init(runtime_env=ash.serve.runtime_env())`` first)."""

    def __init__(
        self,
        root: str | Path,
        *,
        replicas: int = 1,
        cpus_per_replica: float = 1.0,
        timeout_s: float = 30.0,
    ) -> None:
        import ray

        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        self.layout: Layout = load(Path(root))
        self.timeout_s = timeout_s
        actor = replica_class(cpus_per_replica).options(scheduling_strategy="SPREAD")
        self.replicas = [[actor.remote(str(path)) for _ in range(replicas)] for path in self.layout.paths]
        ray.get([r.ready.remote() for shard in self.replicas for r in shard], timeout=max(timeout_s, 120.0))
        self._turn = itertools.count()

    def close(self) -> None:
        import ray

        for shard in self.replicas:
            for r in shard:
                ray.kill(r, no_restart=True)
        self.replicas = []

    def reload(self) -> list[int]:
        """Makes every replica see its shard's latest commit; documents per shard."""
        import ray

        counts = ray.get([r.reload.remote() for shard in self.replicas for r in shard], timeout=self.timeout_s)
        per = len(self.replicas[0])
        return [counts[s * per] for s in range(len(self.replicas))]

    def _fan_out(self, shards: list[int], call: Callable[[Any], Any]) -> tuple[dict[int, Any], list[int]]:
        """``call(replica)`` on one replica of each shard in ``shards``;
        answers by shard, and the shards with none by the deadline."""
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

        deadline = time.monotonic() + self.timeout_s
        turn = next(self._turn)
        answers: dict[int, Any] = {}
        todo = list(shards)
        for attempt in itertools.count():
            refs = {s: call(self.replicas[s][(turn + attempt) % len(self.replicas[s])]) for s in todo}
            todo = []
            for s, ref in refs.items():
                try:
                    answers[s] = ray.get(ref, timeout=max(deadline - time.monotonic(), 0.001))
                except (ActorDiedError, ActorUnavailableError, RayActorError, GetTimeoutError):
                    todo.append(s)
            if not todo or time.monotonic() >= deadline:
                return answers, todo
            if attempt >= len(self.replicas[0]):
                time.sleep(0.05)  # every replica tried: give Ray time to restart one
        raise AssertionError("unreachable")

    def code_of(self, doc_id: str) -> bytes:
        """The code of ``doc_id``, from the shard that holds it."""
        s = shard_of(doc_id, self.layout.shards)
        answers, missing = self._fan_out([s], lambda r: r.code.remote(doc_id))
        if missing:
            raise ShardUnavailableError(missing)
        if answers[s] is None:
            raise ash_search.NotFound(f"no document has id {doc_id!r}")
        return answers[s]

    def encode(self, image: str | Path | np.ndarray) -> bytes:
        """An image's code, encoded by a replica of shard 0."""
        payload = image if isinstance(image, np.ndarray) else str(image)
        answers, missing = self._fan_out([0], lambda r: r.encode.remote(payload))
        if missing:
            raise ShardUnavailableError(missing)
        return answers[0]

    def search(
        self,
        code: bytes | str | np.ndarray | None = None,
        *,
        image: str | Path | np.ndarray | None = None,
        like: str | None = None,
        text: str | None = None,
        filter: str | None = None,
        mode: str = "filter",
        k: int = 10,
        radius: int | None = None,
        weight: float | None = None,
        depth: int | None = None,
        allow_partial: bool = False,
    ) -> ShardedResult:
        """One search over every shard, as :meth:`ash_search.Index.search`
        takes it. ``like`` is resolved to its document's code first, and an
        ``image`` (a file where the replicas run, or a numpy array) is
        encoded by a replica with the shards' pinned encoder."""
        started = time.monotonic()
        if sum(x is not None for x in (code, image, like)) > 1:
            raise ash_search.InvalidInput("give one of code, image and like, not several")
        if like is not None:
            code = self.code_of(like)
        if image is not None:
            code = self.encode(image)
        if isinstance(code, np.ndarray):
            code = code.tobytes()
        query = {
            "code": code,
            "text": text,
            "filter": filter,
            "mode": mode,
            "k": k,
            "radius": radius,
            "weight": weight,
            "depth": depth,
        }
        shards = list(range(self.layout.shards))
        answers, missing = self._fan_out(shards, lambda r: r.search.remote(query))
        if missing and not allow_partial:
            raise ShardUnavailableError(missing)
        hits = sorted((h for s in sorted(answers) for h in answers[s]), key=_merge_key(mode, code is not None))[:k]
        took = (time.monotonic() - started) * 1e3
        return ShardedResult([ash_search.Hit(**h) for h in hits], took, missing=missing)

    def search_many(
        self, codes: np.ndarray, k: int = 10, radius: int | None = None, *, allow_partial: bool = False
    ) -> tuple[list[list[str]], np.ndarray, list[int]]:
        """k-NN for a batch of packed codes over every shard: each query's
        ids and distances (``-1`` past its hits), merged by distance then
        id, and the shards left out."""
        codes = np.ascontiguousarray(codes, np.uint8)
        n = codes.shape[0]
        payload = codes.tobytes()
        shards = list(range(self.layout.shards))
        answers, missing = self._fan_out(shards, lambda r: r.search_many.remote(payload, n, k, radius))
        if missing and not allow_partial:
            raise ShardUnavailableError(missing)
        ids: list[list[str]] = []
        distances = np.full((n, k), -1, np.int64)
        for q in range(n):
            pooled = [
                (int(d), i)
                for s in sorted(answers)
                for i, d in zip(answers[s][0][q], answers[s][1][q], strict=False)
                if d >= 0
            ]
            pooled.sort()
            best = pooled[:k]
            ids.append([i for _, i in best])
            distances[q, : len(best)] = [d for d, _ in best]
        return ids, distances, missing
