"""Rendering on several processes gives exactly what one process gives."""

from __future__ import annotations

import sys

import pytest

from everest_render.parallel import PARALLEL_FROM
from everest_render.pipeline import read_repository, render_repository
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
