"""The canonical YAML writer: what it writes reads back as exactly the value, in YAML 1.1 and 1.2 terms."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from everest_render.emit.yaml_text import dump_document

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
    st.sampled_from(["on", "off", "yes", "No", "~", "null", "1e3", "0755", "0x1F", "1:20", "8.0", "2024-01-01", "-", "- a", "a: b",
                     "#x", "x #y", "*a", "&a", "!t", "|", ">", "'q'", '"q"', "%p", "@a", "`b", " lead", "trail ", "\nlead", "a\r\nb",
                     "tab\there", "\u0085", "\u2028", "\ufeff", "é", "😀", "a\n\n", "\n  indented\n", "  \nx"]),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=10), values, max_size=5))
def test_written_yaml_reads_back_as_the_same_value(value):
    text = dump_document(value)
    assert yaml.load(text, Loader=yaml.CSafeLoader) == value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), values, max_size=5))
def test_writing_is_stable_under_a_second_pass(value):
    text = dump_document(value)
    assert dump_document(yaml.load(text, Loader=yaml.CSafeLoader)) == text


def test_strings_another_yaml_version_would_retype_are_quoted():
    text = dump_document({"a": "on", "b": "1e3", "c": "0755", "d": "8.0", "e": "2024-01-01", "f": "no", "g": "1_000"})
    assert text == '---\na: "on"\nb: "1e3"\nc: "0755"\nd: "8.0"\ne: "2024-01-01"\nf: "no"\ng: "1_000"\n'


def test_ordinary_strings_stay_plain():
    text = dump_document({"image": "percona/percona-server-mongodb:8.0.19-7", "size": "25Gi", "cron": "0 3 * * *"})
    assert text == "---\ncron: 0 3 * * *\nimage: percona/percona-server-mongodb:8.0.19-7\nsize: 25Gi\n"


def test_identity_keys_come_first_and_the_rest_sorted():
    text = dump_document({"spec": {"b": 1, "a": 2}, "zeta": 1, "metadata": {"name": "x"}, "kind": "K", "apiVersion": "v1"})
    assert text == "---\napiVersion: v1\nkind: K\nmetadata:\n  name: x\nspec:\n  a: 2\n  b: 1\nzeta: 1\n"


def test_multi_line_strings_are_literal_blocks():
    assert dump_document({"c": "[mysqld]\nmax_connections = 100\n"}) == "---\nc: |\n  [mysqld]\n  max_connections = 100\n"


def test_a_block_whose_first_line_is_indented_carries_an_indentation_indicator():
    text = dump_document({"c": "\n      operationProfiling:\n        mode: slowOp\n"})
    assert text.startswith("---\nc: |2\n")
    assert yaml.safe_load(text) == {"c": "\n      operationProfiling:\n        mode: slowOp\n"}


def test_sequences_of_mappings_are_written_as_kubectl_does():
    assert dump_document({"l": [{"name": "rs0", "size": 3}]}) == "---\nl:\n- name: rs0\n  size: 3\n"


def test_empty_collections_are_flow_style():
    assert dump_document({"a": {}, "b": []}) == "---\na: {}\nb: []\n"


def test_what_the_writer_remembers_is_bounded_and_changes_nothing(monkeypatch):
    import everest_render.emit.yaml_text as yaml_text

    monkeypatch.setattr(yaml_text, "_REMEMBERED", 8)
    documents = [{"kind": "K", f"k{i}": f"v{i % 12}", "c": f"line {i % 3}\nnext\n", "on": "on"} for i in range(40)]
    first = [dump_document(d) for d in documents]
    assert len(yaml_text._WRITTEN) <= 8 and len(yaml_text._KEYS) <= 8
    assert [dump_document(d) for d in documents] == first
    assert first[0] == '---\nkind: K\nc: |\n  line 0\n  next\nk0: v0\n"on": "on"\n'


def test_the_order_of_keys_remembered_for_one_mapping_is_not_taken_for_another():
    # True == 1 and hash alike: the order of {True: ..} must not be taken for {1: ..} ("1" < "A" < "True").
    assert dump_document({True: "a", "A": 1}) == '---\nA: 1\n"True": a\n'
    assert dump_document({1: "a", "A": 1}) == '---\n"1": a\nA: 1\n'
    assert dump_document({"A": 1, True: "a"}) == '---\nA: 1\n"True": a\n'


def test_mappings_that_are_not_dicts_are_written_as_dicts():
    import types

    assert dump_document({"x": types.MappingProxyType({"z": 1.5}), "y": types.MappingProxyType({})}) == '---\nx:\n  z: 1.5\n"y": {}\n'


def test_a_remembered_block_is_only_taken_for_the_very_same_value(monkeypatch):
    import everest_render.emit.yaml_text as yaml_text

    monkeypatch.setattr(yaml_text, "_BLOCKS", {})
    # Equal in Python, and hashing alike, but each written as what it is.
    written = [dump_document({"spec": {"a": {"x": value}}}) for value in (1, True, 1.0, 1, True)]
    assert written == ["---\nspec:\n  a:\n    x: 1\n", "---\nspec:\n  a:\n    x: true\n", "---\nspec:\n  a:\n    x: 1.0\n", *written[:2]]
    assert dump_document({"spec": {"a": [{"x": 1}]}}) != dump_document({"spec": {"b": [{"x": 1}]}})  # the key is part of it
    for _ in range(2):  # a tuple is no YAML value, remembered or not
        with pytest.raises(TypeError):
            dump_document({"spec": {"a": ({"x": 1},)}})
    # A cluster's metadata (its name, its labels) is written afresh each time, not remembered.
    dump_document({"metadata": {"labels": {"app": "orders"}}, "spec": {"a": {"x": 1}}})
    assert all(key != "labels:" for key, _ in yaml_text._BLOCKS)


def test_remembered_blocks_are_bounded(monkeypatch):
    import everest_render.emit.yaml_text as yaml_text

    monkeypatch.setattr(yaml_text, "_BLOCKS", {})
    monkeypatch.setattr(yaml_text, "_BLOCKS_REMEMBERED", 4)
    documents = [{"spec": {"a": {"x": i % 6}, "b": [i % 5]}} for i in range(30)]
    first = [dump_document(d) for d in documents]
    assert len(yaml_text._BLOCKS) <= 4
    assert [dump_document(d) for d in documents] == first
    assert first[7] == "---\nspec:\n  a:\n    x: 1\n  b:\n  - 2\n"


def test_a_block_the_reader_made_from_remembered_bytes_is_written_as_a_copy_of_it_is():
    """The line reader leaves the bytes it read a second-level block from for the emitter
    (everest_render/marshalled.py), which takes them rather than marshalling the block again:
    the document comes out as a copy of it, whose bytes the emitter makes itself."""
    import copy

    from everest_render import marshalled
    from everest_render.load.line_reader import read_rendered

    text = 'apiVersion: v1\nkind: X\nspec:\n  a:\n    b: [1, 2.5, true]\n    c: "on"\n  d:\n    - {e: null}\n'
    read_rendered(text)  # its blocks remembered
    (document,) = read_rendered(text) or [None]  # and read again from their bytes
    blocks = [document["spec"]["a"], document["spec"]["d"]]
    assert all(id(block) in marshalled._KNOWN for block in blocks)
    assert dump_document(document) == dump_document(copy.deepcopy(document))
    assert not any(id(block) in marshalled._KNOWN for block in blocks)  # taken, once
