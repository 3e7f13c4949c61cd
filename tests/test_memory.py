"""What a render holds while it runs: each object only until its bytes are emitted, and no
template's leftovers (a 10,000-cluster fleet must render within a few hundred MB)."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Sequence

import jinja2.runtime
import pytest

from everest_render.check.core import duplicate_problems, identity
from everest_render.emit.yaml_text import dump_document
from everest_render.model import ResolvedCluster
from everest_render.pipeline import emitted_objects, read_repository, render_each, render_repository, resolve_repository
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def files():
    return read_repository(PROJECT_ROOT)


def test_a_render_keeps_of_each_object_only_what_the_checks_across_clusters_need(files):
    lean, whole = render_repository(files), render_repository(files, keep_objects=True)
    assert not whole.failed and whole.objects
    assert lean.objects == ()
    assert lean.emitted == emitted_objects(whole.objects)
    assert (lean.plan, lean.diagnostics) == (whole.plan, whole.diagnostics)


def test_rendering_leaves_no_template_cycles_behind_with_the_collector_off(files):
    # Jinja's imported macros are reference cycles, and the commands run with gc off: what is
    # left after a render (the compiled templates') must not grow with the clusters rendered.
    clusters = resolve_repository(files).clusters
    enabled = gc.isenabled()
    gc.disable()
    try:
        left = [_macros_left_by(clusters * times) for times in (1, 3)]
    finally:
        if enabled:
            gc.enable()
    assert left[0] == left[1]


def _macros_left_by(clusters: Sequence[ResolvedCluster]) -> int:
    gc.collect()
    before = sum(isinstance(o, jinja2.runtime.Macro) for o in gc.get_objects())
    render_each(clusters, keep_objects=False)
    return sum(isinstance(o, jinja2.runtime.Macro) for o in gc.get_objects()) - before


def test_with_extensions_a_render_keeps_of_their_shared_objects_only_their_text(tmp_path):
    # Of a cluster's extension objects, the shared ones (kept once for the namespace) live on as
    # the text they are written as, one copy of each text whichever clusters render it; of its
    # ExternalSecrets, the Secrets they supply. No mapping of any object is held.
    shutil.copytree(PROJECT_ROOT / "clusters", tmp_path / "clusters")
    shutil.copyfile(PROJECT_ROOT / "examples/builtin-extensions/everest-render.yaml", tmp_path / "everest-render.yaml")
    clusters = resolve_repository(read_repository(tmp_path)).clusters
    whole, lean = render_each(clusters, keep_objects=True), render_each(clusters, keep_objects=False)
    assert all(part.objects == () for part in lean)
    shared = [o for part in whole for o in part.objects if o.shared]
    kept = [s for part in lean for s in part.shared]
    assert kept and [s.text for s in kept] == [dump_document(o.obj) for o in shared]
    assert [(s.cluster, s.identity) for s in kept] == [(o.cluster, identity(o.obj)) for o in shared]
    copies = {}
    assert len(kept) > len({s.text for s in kept})  # a namespace's clusters render the same ones
    assert all(copies.setdefault(s.text, s.text) is s.text for s in kept)
    supplies = [s for part in lean for s in part.supplies]
    secrets = [o for part in whole for o in part.objects if o.obj["kind"] == "ExternalSecret" and not o.shared]
    assert supplies and len(supplies) == len(secrets)
    assert [part.supplies for part in lean] == [part.supplies for part in whole]


def test_what_is_kept_of_each_object_to_the_end_shares_its_template_name_and_group(files):
    emitted = render_repository(files).emitted
    assert emitted and not hasattr(emitted[0], "__dict__")  # slots: no dictionary each
    for part in (lambda e: e.template, lambda e: e.identity[0]):
        assert len({id(part(e)) for e in emitted}) == len({part(e) for e in emitted})


def test_the_check_for_repeated_identities_looks_at_the_clusters_of_repeats_only(files):
    resolved = resolve_repository(files)
    emitted = render_repository(files).emitted
    twice = (*emitted, emitted[0])
    owner = {emitted[0].cluster: next(c for c in resolved.clusters if c.ref == emitted[0].cluster)}
    (problem,) = duplicate_problems(twice, owner, ())
    assert problem.message.startswith("duplicate object ")
