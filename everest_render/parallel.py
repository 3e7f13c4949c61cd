"""Rendering a large fleet on every core.

Render, post-process, check and emit are per cluster and pure, so a fleet can be cut into
contiguous slices rendered by forked processes; the results are merged in slice order, which
gives exactly the sequential result (the output plan and the diagnostics are sorted anyway).
Forking (not spawning) lets the workers inherit the resolved clusters instead of receiving them
pickled; where fork is not available, or the fleet is small, one process does the work.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass, field

from everest_render.check.crd import check_objects
from everest_render.diagnostics import Diagnostic
from everest_render.emit.output import cluster_files
from everest_render.model import RenderedObject, ResolvedCluster
from everest_render.render.postprocess import postprocess
from everest_render.render.templates import render_clusters

# Below this many clusters, forking costs more than it saves (measured: ~40 ms per worker).
PARALLEL_FROM = 200


@dataclass
class FleetOutput:
    objects: list[RenderedObject] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    def add(self, other: FleetOutput) -> None:
        self.objects.extend(other.objects)
        self.files.update(other.files)
        self.problems.extend(other.problems)


def render_slice(clusters: Sequence[ResolvedCluster]) -> FleetOutput:
    """Render, post-process, check and emit some clusters."""
    by_ref = {cluster.ref: cluster for cluster in clusters}
    objects, render_problems = render_clusters(clusters)
    objects, post_problems = postprocess(objects, by_ref)
    check_problems = check_objects(objects, by_ref)
    return FleetOutput(objects, cluster_files(objects), [*render_problems, *post_problems, *check_problems])


# The slices a forked worker renders: set just before the pool forks, read by index in the child.
_SLICES: list[Sequence[ResolvedCluster]] = []


def _render_slice_at(index: int) -> FleetOutput:
    return render_slice(_SLICES[index])


def render_fleet(clusters: Sequence[ResolvedCluster], jobs: int = 1) -> FleetOutput:
    """``render_slice`` over all clusters, on up to ``jobs`` processes."""
    if jobs <= 1 or len(clusters) < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return render_slice(clusters)
    size = -(-len(clusters) // jobs)
    _SLICES[:] = [clusters[start : start + size] for start in range(0, len(clusters), size)]
    try:
        with multiprocessing.get_context("fork").Pool(len(_SLICES)) as pool:
            parts = pool.map(_render_slice_at, range(len(_SLICES)))
    finally:
        _SLICES.clear()
    merged = FleetOutput()
    for part in parts:
        merged.add(part)
    return merged
