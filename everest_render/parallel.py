"""A pure function mapped over contiguous slices of a sequence, on forked processes.

The results come back in slice order, so a caller that merges them gets exactly what one
call over the whole sequence gives. Forking (not spawning) lets the workers inherit the
function and the items instead of receiving them pickled; where fork is not available, or
the input is small, one process does the work. No stage lives here: `pipeline` says what
runs on each slice.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items, forking costs more than it saves (measured: ~40 ms per worker
# rendering clusters).
PARALLEL_FROM = 200

# With ``cuts``, the slices a worker is handed: enough that the last ones to finish are short
# (clusters differ twofold in what they cost, and a fleet's files are sorted by namespace, so
# even halves were 2.7 s and 3.9 s of CPU at 10,000 clusters), few enough that what each
# slice costs apart (its task, its results' pipe) stays small.
SLICES_PER_JOB = 16

# The work a forked worker does: set just before the pool forks, read by index in the child.
_WORK: list[tuple[Callable[[Sequence[Any]], Any], Sequence[Any]]] = []


def _run_slice(index: int) -> Any:
    function, items = _WORK[index]
    return function(items)


def map_slices(function: Callable[[Sequence[Item]], Result], items: Sequence[Item], jobs: int = 1) -> list[Result]:
    """``function`` over contiguous slices of ``items``, on up to ``jobs`` processes, in slice order."""
    return start_slices(function, items, jobs)()


def start_slices(
    function: Callable[[Sequence[Item]], Result],
    items: Sequence[Item],
    jobs: int = 1,
    *,
    cuts: Callable[[int], Sequence[int]] | None = None,
) -> Callable[[], list[Result]]:
    """`map_slices`, begun: the workers start now and the caller goes on with other work (the
    diff against a revision resolves one side meanwhile); the function returned waits for the
    results. On one process, the work is done when that function is called. One at a time.
    ``cuts``: given the number of slices wanted, where the slices after the first start (in
    place of ``jobs`` even slices); the slices are then handed to the ``jobs`` workers one at a
    time, as each is free, so a worker with lighter slices (or a CPU the caller shares) takes
    more of them."""
    if jobs <= 1 or len(items) < PARALLEL_FROM:
        return lambda: [function(items)]
    import multiprocessing  # only a large fleet forks: a one-cluster run (the Argo CD plugin) does not pay its import

    if "fork" not in multiprocessing.get_all_start_methods():
        return lambda: [function(items)]
    if cuts is None:
        size = -(-len(items) // jobs)
        starts = list(range(0, len(items), size))
    else:
        starts = sorted({0, *(start for start in cuts(jobs * SLICES_PER_JOB) if 0 < start < len(items))})
    _WORK[:] = [(function, items[start:end]) for start, end in zip(starts, [*starts[1:], len(items)], strict=True)]
    try:
        pool = multiprocessing.get_context("fork").Pool(min(jobs, len(_WORK)))
    except BaseException:
        _WORK.clear()
        raise
    try:
        pending = pool.map_async(_run_slice, range(len(_WORK)), chunksize=1)
    except BaseException:
        pool.terminate()
        _WORK.clear()
        raise

    def wait() -> list[Result]:
        try:
            results: list[Result] = pending.get()
        finally:
            pool.terminate()
            _WORK.clear()
        return results

    return wait


def available_cpus() -> int:
    """CPUs this process may use: the cgroup's CPU quota (a container's limit) and the
    scheduler's affinity, not the node's CPU count, which a container does not own."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    quota = cgroup_cpu_quota(Path("/sys/fs/cgroup"))
    return max(1, min(allowed, quota) if quota is not None else allowed)


def cgroup_cpu_quota(cgroup_root: Path) -> int | None:
    """The CPU limit of cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`/`cpu.cfs_period_us`),
    rounded up to whole CPUs; None when unlimited or unreadable."""
    try:
        fields = (cgroup_root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return math.ceil(int(fields[0]) / int(fields[1]))
        if fields:
            return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((cgroup_root / "cpu/cpu.cfs_quota_us").read_text())
        period = int((cgroup_root / "cpu/cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return math.ceil(quota / period) if quota > 0 and period > 0 else None
