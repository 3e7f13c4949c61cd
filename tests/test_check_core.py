"""The core checks' quick look at labels and annotations (check/core.py `_plainly_valid`)
says nothing the full look would not: whatever keys earlier objects made known good."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from everest_render.check import core
from everest_render.check.core import MAX_ANNOTATIONS_BYTES, object_problems

_KEYS = st.sampled_from(["app", "team", "a/b", "x.io/y", "-bad", "argocd.argoproj.io/instance", "kustomize.toolkit.fluxcd.io/name", "é", ""])
_VALUES = st.one_of(st.sampled_from(["", "ok", "a-b_c.d", "-x", "x" * 64, "é", "é" * 70_000]), st.integers(), st.none())
_MAPS = st.one_of(st.none(), st.integers(), st.dictionaries(_KEYS, _VALUES, max_size=4))


def _full(obj):
    """What the checks say with no key known good: the full look at every label and annotation."""
    kept = {field: set(keys) for field, keys in core._GOOD_KEYS.items()}
    for keys in core._GOOD_KEYS.values():
        keys.clear()
    try:
        return object_problems(obj)
    finally:
        for field, keys in kept.items():
            core._GOOD_KEYS[field] |= keys


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_MAPS, _MAPS), min_size=1, max_size=4))
def test_the_quick_look_at_metadata_maps_says_what_the_full_look_says(objects):
    for labels, notes in objects:
        obj = {"metadata": {"name": "x", "labels": labels, "annotations": notes}}
        assert object_problems(obj) == _full(obj)


def test_annotations_over_the_limit_are_refused_under_known_good_keys():
    object_problems({"metadata": {"name": "x", "annotations": {"a": "b"}}})
    assert "a" in core._GOOD_KEYS["annotations"]
    for value in ("x" * MAX_ANNOTATIONS_BYTES, "é" * (MAX_ANNOTATIONS_BYTES // 2)):
        problems = object_problems({"metadata": {"name": "x", "annotations": {"a": value}}})
        assert [path for path, message in problems if "annotations total" in message] == [("metadata", "annotations")]


def test_tracking_metadata_is_never_a_known_good_key():
    for field, key in (("labels", "argocd.argoproj.io/instance"), ("annotations", "kubectl.kubernetes.io/last-applied-configuration")):
        for _ in range(2):
            problems = object_problems({"metadata": {"name": "x", field: {key: "v"}}})
            assert [path for path, _ in problems] == [("metadata", field, key)]
        assert key not in core._GOOD_KEYS[field]
