"""Rendering on several processes gives exactly what one process gives."""

from __future__ import annotations

import os
import sys

import pytest

from everest_render.cache.entries import neighbours
from everest_render.parallel import PARALLEL_FROM, SLICES_PER_JOB, start_slices
from everest_render.pipeline import _group_ends, read_repository, render_repository
from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from fleet import write_fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    return write_fleet(tmp_path_factory.mktemp("fleet") / "repo", PARALLEL_FROM + 37)


def test_a_fleet_renders_the_same_bytes_on_one_or_several_processes(fleet):
    files = read_repository(fleet)
    one, several = render_repository(files, jobs=1, keep_objects=True), render_repository(files, jobs=3, keep_objects=True)
    assert not one.failed and one.objects
    assert several.plan.files == one.plan.files
    assert [o.obj for o in several.objects] == [o.obj for o in one.objects]
    assert several.emitted == one.emitted == render_repository(files, jobs=3).emitted


def test_problems_found_in_workers_are_all_reported(fleet):
    # Refusals from templates, raised inside the workers, in both halves of the fleet.
    pxc = next(fleet.glob("clusters/*/db-00002.yaml"))
    pxc.write_text(pxc.read_text().replace("replicas: 3", "replicas: 4"))
    postgres = next(fleet.glob("clusters/*/db-00203.yaml"))
    postgres.write_text(postgres.read_text().replace("shared_buffers 1GB", "shared_buffers"))
    files = read_repository(fleet)
    one, several = render_repository(files, jobs=1), render_repository(files, jobs=2)
    assert one.failed and len(one.diagnostics) == 2
    assert [str(d) for d in several.diagnostics] == [str(d) for d in one.diagnostics]
    assert several.plan.files == {}


def _pids_and_items(items):
    return os.getpid(), list(items)


def test_slices_cut_where_asked_come_back_in_order_from_fewer_workers():
    items = list(range(PARALLEL_FROM * 2))
    asked = []

    def cuts(count):
        asked.append(count)
        return [7, 7, 150, 0, 301, len(items), 5000]  # repeats and bounds are dropped

    results = start_slices(_pids_and_items, items, 2, cuts=cuts)()
    assert asked == [2 * SLICES_PER_JOB]
    assert [part for _, part in results] == [items[:7], items[7:150], items[150:301], items[301:]]
    assert len({pid for pid, _ in results}) <= 2 and os.getpid() not in {pid for pid, _ in results}


def test_slices_of_clusters_start_at_ends_of_cache_groups():
    # Every start is where a group of neighbours ends: each slice stores the very groups one
    # slice of them all would (cache/entries.py), on any number of CPUs.
    paths = [f"clusters/ns-{n // 3:04d}/db.yaml" for n in range(3000)]  # three clusters a file
    ends = {group.stop for group in neighbours(paths)}
    for count in (2, 5, 32):
        starts = _group_ends(paths, count)
        assert starts and set(starts) <= ends and starts == sorted(starts)
        assert len(set(starts)) >= count // 2  # spread over the fleet, not bunched
    assert _group_ends(paths[:3], 4) == [] or set(_group_ends(paths[:3], 4)) <= {3}


def test_without_a_cache_each_worker_hands_back_many_small_slices(fleet, monkeypatch):
    # A worker's results come back a slice at a time: in one half a fleet each, the parent held
    # a half's pickled results beside what it had unpickled (the largest process of a render).
    import everest_render.parallel
    import everest_render.pipeline

    counts = []

    def counted(*args, **kwargs):
        wait = start_slices(*args, **kwargs)

        def waited():
            results = wait()
            counts.append(len(results))
            return results

        return waited

    monkeypatch.setattr(everest_render.parallel, "start_slices", counted)
    monkeypatch.setattr(everest_render.pipeline, "start_slices", counted)
    files = read_repository(fleet)
    several = render_repository(files, jobs=2)
    assert counts == [2 * SLICES_PER_JOB]
    assert several.plan.files == render_repository(files, jobs=1).plan.files
