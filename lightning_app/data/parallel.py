"""Per-column work spread over a few threads: numpy releases the GIL inside its loops.

pandas' CSV reader already parses on several threads; the column-wise steps after it (hashing,
encoding, fitting statistics) use the same cores this way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 8
MIN_ITEMS = 4  # fewer columns are not worth a thread pool


def workers() -> int:
    """Threads for column work: the cores this process may use, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def column_map(fn: Callable[[T], R], items: Sequence[T], size: int = 0) -> list[R]:
    """``[fn(item) for item in items]``, on threads when there are enough items and rows.

    Args:
        fn: work on one column; must not share mutable state with other calls.
        items: one per column.
        size: rows per column; small tables run sequentially (threads would cost more).
    """
    n = workers()
    if n == 1 or len(items) < MIN_ITEMS or size < 50_000:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, items))
