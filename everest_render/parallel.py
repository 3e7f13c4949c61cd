"""A pure function mapped over contiguous slices of a sequence, on forked processes.

The results come back in slice order, so a caller that merges them gets exactly what one
call over the whole sequence gives. Forking (not spawning) lets the workers inherit the
function and the items instead of receiving them pickled; where fork is not available, or
the input is small, one process does the work. No stage lives here: `pipeline` says what
runs on each slice.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items, forking costs more than it saves (measured: ~40 ms per worker
# rendering clusters).
PARALLEL_FROM = 200

# The work a forked worker does: set just before the pool forks, read by index in the child.
_WORK: list[tuple[Callable[[Sequence[Any]], Any], Sequence[Any]]] = []


def _run_slice(index: int) -> Any:
    function, items = _WORK[index]
    return function(items)


def map_slices(function: Callable[[Sequence[Item]], Result], items: Sequence[Item], jobs: int = 1) -> list[Result]:
    """``function`` over contiguous slices of ``items``, on up to ``jobs`` processes, in slice order."""
    if jobs <= 1 or len(items) < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return [function(items)]
    size = -(-len(items) // jobs)
    _WORK[:] = [(function, items[start : start + size]) for start in range(0, len(items), size)]
    try:
        with multiprocessing.get_context("fork").Pool(len(_WORK)) as pool:
            results: list[Result] = pool.map(_run_slice, range(len(_WORK)))
    finally:
        _WORK.clear()
    return results
