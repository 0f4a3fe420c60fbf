"""Search served by a Ray cluster over shards: ``python -m ash.serve``.

One machine's index stops being enough when its queries per second are not,
or when an archive's indexes live on several machines. ``ash.serve`` splits
an index into S shards by id hash (:mod:`.shards`, each an ordinary
ash-search index), holds each shard open read-only in Ray actors (:mod:`.replica`,
one per replica) and answers through a front that fans a query out and
merges exactly (:mod:`.front`). It needs the ``ash_search`` Python module
(``make python-install``) and Ray.
"""

from .front import ShardedResult, ShardedSearch, ShardUnavailableError, runtime_env
from .shards import BuildReport, Layout, ShardLayoutError, create, delete, ingest, load, shard_of

__all__ = [
    "BuildReport",
    "Layout",
    "ShardLayoutError",
    "ShardUnavailableError",
    "ShardedResult",
    "ShardedSearch",
    "create",
    "delete",
    "ingest",
    "load",
    "runtime_env",
    "shard_of",
]
