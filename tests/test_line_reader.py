"""The fast reader of template output and input files (load/line_reader.py) reads what it takes
exactly as libyaml does, and hands everything else to libyaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import everest_render.load.line_reader as line_reader
import everest_render.render.templates as templates
from everest_render.load.documents import Refused, compose_stream, node_value, parse_yaml
from everest_render.load.line_reader import read_input, read_rendered
from everest_render.load.text import SourceFile
from everest_render.pipeline import read_repository, render_repository

EXAMPLE = Path(__file__).resolve().parent.parent


def typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it (True == 1 in Python, not in YAML)."""
    if isinstance(value, dict):
        return ("map", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("seq", [typed(item) for item in value])
    return (type(value).__name__, value)


def by_libyaml(text: str) -> Any:
    """libyaml's documents, or the kind of refusal (an error the fast reader must not decide)."""
    try:
        return [node_value(node) for node in compose_stream(text)]
    except (yaml.YAMLError, Refused) as error:
        return type(error)


def assert_read_alike(text: str) -> bool:
    """The fast reader gives libyaml's documents, or nothing; whether it read the text."""
    fast = read_rendered(text)
    if fast is None:
        return False
    expected = by_libyaml(text)
    assert isinstance(expected, list), f"libyaml refuses what the fast reader read: {text!r}"
    assert typed(fast) == typed(expected), text
    return True


@pytest.fixture(scope="module")
def template_outputs() -> list[str]:
    """Every template output of the example repository (every built-in provider and feature:
    the fleet `make bench` renders is copies of it)."""
    outputs: list[str] = []
    original = templates.read_rendered

    def recording(text: str) -> list[Any] | None:
        outputs.append(text)
        return original(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(templates, "read_rendered", recording)
        assert not render_repository(read_repository(EXAMPLE)).failed
    return outputs


def test_every_template_output_of_the_example_fleet_is_read_as_libyaml_reads_it(template_outputs: list[str]) -> None:
    read = [assert_read_alike(text) for text in template_outputs]
    assert len(read) > 20
    assert all(read), "the built-in templates write only what the fast reader takes"


ALIKE = [
    "a: 1\nb: 01\nc: 0x1f\nd: 1_000\ne: 1.5\nf: .5\ng: 1e3\nh: 1:20\ni: -0\nj: +1\n",
    "a: .inf\n",
    "a: yes\nb: No\nc: on\nd: Null\ne: null\nf: true\ng: y\nh: 2024-01-01\ni: 0o17\n",
    'a: "yes"\nb: "1"\nc: ""\nd: "\\u00e9\\n\\t\\"q\\\\"\ne: "\\u0085"\n',
    'a: {"x": 1, "y": [1, 2.5, true, null, "s"], "z": {}}\nb: []\nc: [ReadWriteOnce, 1, yes]\n',
    "a:\n- 1\n- b: 2\n  c: 3\n-\n- - x\n  - y\nd:\n  - e\ne:\n",
    "# a comment\na: 1 # trailing\n",
    "---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n",
    "a: x:y\nb: http://h:8080/p\nc: 0 3 * * *\nd: a, b\ne: f(x)\nf: a$x\ng: a=b\n",
    "a: 1\n  b: 2\n",  # invalid: libyaml refuses, the fast reader does not decide
    "a: 1\na: 2\n",
    "y: 1\n",
    "'a': 1\n",
    "a: |\n  text\n",
    "a: >-\n  folded\n",
    "a: &x 1\nb: *x\n",
    "a: !!str 1\n",
    "a: 'q'\n",
    "a: word\n  continued\n",
    '"a": "b"\n"a": 2\n',
    'a: {"x": 1, "x": 2}\n',
    'a: {"x":1}\n',
    'a: "\\ud83d\\ude00"\n',
    'a: "\\u0001"\n',
    'a: "\\/"\n',
    "a: [1e3, 1.0e+3]\n",
    "a: [1.0e+3]\n",
    "a: 12345678901234567890\n",
    'a: {"n": 12345678901234567890}\n',
    "a: -\n",
    "a: - b\n",
    "- a\n- b\n",
    "plain\n",
    "a:\n\tb: 1\n",
    "a: b\r\nc: d\r\n",
    "a: \u2028\n",
    "--- x\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\n...\n",
    "<<: {a: 1}\n",
    "a: b: c\n",
    "a: \"unterminated\n",
    'a: "x" "y"\n',
    "a:\n  - 1\n - 2\n",
    "- a: 1\n b: 2\n",
    "a: [b, [c]]\n",
    "a: {b: c}\n",
    # A plain key ends at the line's first colon; what follows must be a space or nothing.
    "a:b\n",
    "a::b\n",
    "a:  b\n",
    ":a\n",
    "a b: c\n",
    "a.b/c-d_e: x: y\n",
    '"q:x": y\n',
    "- a:b\n",
    "- a: b\n  c:d\n",
    # Block scalars after blank and comment lines, in lists and in later documents: each is
    # read from its own lines (the reader counts line numbers only for them).
    "# c\n\na:\n- |\n  x\n\n  y\n- >-\n  f\n# c\nb: |+\n  k\n\n",
    "a: 1\n---\n# c\n\nb: |\n  t\n---\nc: >\n  u\n",
    "a:\n  - - x\n    - |\n      t\n  -   b: 1\n      c: |\n        u\n  - # c\n    d: |-\n      v\n",
]


@pytest.mark.parametrize("text", ALIKE)
def test_texts_at_the_edges_of_the_subset_are_read_alike_or_left_to_libyaml(text: str) -> None:
    assert_read_alike(text)


def test_no_two_documents_share_a_collection() -> None:
    """A line is read once per spelling, but a flow collection is each document's own: the
    stages after change one document's objects, not another's."""
    text = 'a: {"x": [1]}\nb: [c, d]\n---\na: {"x": [1]}\nb: [c, d]\n'
    first, second = read_rendered(text) or []
    first["a"]["x"].append(2)
    first["b"].append("e")
    assert second == {"a": {"x": [1]}, "b": ["c", "d"]}
    assert (read_rendered(text) or [])[0] == second


def test_a_block_read_before_is_each_document_its_own_copy() -> None:
    """The blocks under a document's entries are read once per spelling (`_remembered`), each
    document given a copy of its own."""
    text = "spec:\n  a:\n    b: [1]\n    c:\n      - d\n"
    first, second = read_rendered(f"{text}---\n{text}") or []
    first["spec"]["a"]["b"].append(2)
    first["spec"]["a"]["c"].append("e")
    assert second == {"spec": {"a": {"b": [1], "c": ["d"]}}}
    assert (read_rendered(text) or [])[0] == second


def test_a_text_read_again_is_parsed_twice_at_most_each_document_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A template's whole output read before is kept from its second reading on (an extension
    renders the same text for every cluster of one name): its documents are libyaml's, new each
    time, and the emitter is handed the bytes of their blocks as when they are read (marshalled.py)."""
    import marshal

    from everest_render import marshalled

    text = (
        "apiVersion: v1\nkind: Thing\nmetadata:\n  name: text-read-again\n  labels: {a: b}\n"
        "spec:\n  size: 3\n  ports:\n    - {port: 1}\n  sel:\n    x: [1, 2]\n"
        "empty: {}\nitems:\n  - one\n---\nkind: Other\nspec:\n  enabled: true\n"
    )
    split = line_reader._split
    parsed = []
    monkeypatch.setattr(line_reader, "_split", lambda *args, **kwargs: parsed.append(1) or split(*args, **kwargs))
    readings = [read_rendered(text) or [] for _ in range(4)]
    assert len(parsed) == 2  # the first two readings; then kept (each reading parsed it before)
    expected = by_libyaml(text)
    assert all(typed(read) == typed(expected) for read in readings)
    readings[2][0]["spec"]["ports"][0]["port"] = 9
    readings[2][0]["metadata"]["labels"]["a"] = "c"
    readings[2][0]["items"].append("two")
    assert typed(readings[3]) == typed(expected)
    block = readings[3][0]["spec"]["sel"]
    assert marshal.loads(marshalled.take(block) or b"") == block


@pytest.mark.parametrize(
    "body",
    [
        ["x", "", "y"],  # a blank line, which a line's shape leaves out
        ["x", "y"],
        ["x", "# kept: no comment in a literal", "y"],
        ["x  ", "y"],  # trailing spaces, which a line's shape strips
        ["x", "y", ""],
    ],
)
def test_a_block_holding_a_block_scalar_is_read_from_its_text_each_time(body: list[str]) -> None:
    """Lines alike in shape may differ in the text a literal reads: such a block is not remembered."""
    for header in ("|", "|+", ">"):
        lines = "\n".join(f"      {line}" if line else "" for line in body)
        assert assert_read_alike(f"spec:\n  a:\n    b: {header}\n{lines}\n    c: 1\n")


def test_the_subset_is_what_templates_write() -> None:
    taken = [text for text in ALIKE if read_rendered(text) is not None]
    assert {ALIKE[i] for i in (0, 2, 3, 4, 5, 7, 8)} <= set(taken)
    assert read_rendered("a: 1\n  b: 2\n") is None and read_rendered("y: 1\n") is None


# Random texts in the style of template output, and near it: the reader must agree with libyaml
# or leave the text to it, never differ.
# Mostly what templates write, sometimes what leaves the subset (or YAML).
_GOOD_KEYS = ["a", "b", "c", "name", "spec", "a.b/c-d", '"q"', '"x y"', '"a"']
_KEYS = st.sampled_from(_GOOD_KEYS * 6 + ["y", "on", "1", "<<", "'s'", "k:", "a b", "-a"])
_GOOD_SCALARS = ["x", "1", "-1", "0", "01", "1.5", "1e3", "yes", "no", "null", "true", "x y", "x:y", "v-1.2", "2024-01-01",
                 "0 3 * * *", "a, b", '"s"', '"a\\"b"', '"\\u00e9"', '""', "[]", "{}", "[a, b]", '{"k": [1, 2.5]}', '{"k": "v"}']
_SCALARS = st.sampled_from(
    _GOOD_SCALARS * 4
    + ["1.0e+3", "~", "x: y", "x #c", "#c", '"\\ud800"', '"\\x41"', "'s'", "-", "- x", '{"k": 1, "k": 2}', "[1e3]", "*a",
       "&a x", "!!str 1", "|", "|\n  t", ">", "(x)", "...", "---", '"a" b', '"\\u0001"', "[1.0e+3]", "[a, [b]]"]
)


def _block(draw: st.DrawFn, indent: int, depth: int) -> list[str]:
    """A mapping or a list in block style, as templates write them, from the vocabulary above."""
    pad = " " * indent
    lines: list[str] = []
    as_list = depth > 0 and draw(st.integers(0, 3)) == 0
    for _ in range(draw(st.integers(1, 4))):
        nested = depth < 3 and draw(st.integers(0, 3)) == 0
        if as_list:
            if nested:
                inner = _block(draw, indent + 2, depth + 1)
                lines.append(f"{pad}- {inner[0].lstrip(' ')}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {draw(_SCALARS)}")
        elif nested:
            lines.append(f"{pad}{draw(_KEYS)}:")
            inner = _block(draw, indent + draw(st.sampled_from([2, 2, 4])), depth + 1)
            if draw(st.booleans()) and inner[0].lstrip(" ").startswith("- "):
                inner = [line[len(inner[0]) - len(inner[0].lstrip(" ")) - indent :] for line in inner]  # kubectl's style
            lines.extend(inner)
        else:
            lines.append(f"{pad}{draw(_KEYS)}: {draw(_SCALARS)}")
    return lines


@st.composite
def template_like(draw: st.DrawFn) -> str:
    documents = [_block(draw, 0, 0) for _ in range(draw(st.integers(1, 2)))]
    lines = [line for document in documents for line in ["---", *document]][draw(st.integers(0, 1)) :]
    for _ in range(draw(st.integers(0, 2))):  # and near it: a line moved, doubled, commented, blank
        at = draw(st.integers(0, len(lines) - 1))
        change = draw(st.integers(0, 3))
        if change == 0:
            lines[at] = " " * draw(st.integers(0, 3)) + lines[at]
        elif change == 1:
            lines.insert(at, lines[at])
        else:
            lines.insert(at, draw(st.sampled_from(["# c", "  # c", "", "  ", "-", "...", "--- x"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=300, deadline=None)
@given(template_like())
def test_random_template_like_texts_are_read_alike_or_left_to_libyaml(text: str) -> None:
    assert_read_alike(text)


# Input files: read_input against the loader's own reading through libyaml (parse_yaml with the
# line reader out of the way), which says every problem.


def loaded_by_libyaml(text: str) -> tuple[list[tuple[int, Any]], bool]:
    """The loader's documents (index and typed value) through libyaml, and whether it found a problem."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(line_reader, "read_input", lambda text: None)
        documents, problems = parse_yaml(SourceFile("f.yaml", text))
    return [(d.index, typed(d.data)) for d in documents], bool(problems) or any(d.refused for d in documents)


def assert_loaded_alike(text: str) -> bool:
    """read_input gives the loader's documents and indices, or nothing; whether it read the text."""
    fast = read_input(text)
    if fast is None:
        return False
    expected, problems = loaded_by_libyaml(text)
    assert not problems, f"the loader finds a problem in what the line reader read: {text!r}"
    assert [(index, typed(value)) for index, value in fast] == expected, text
    return True


def _input_files() -> list[Path]:
    """The repository's small YAML inputs: the example fleet, cases, bad inputs, fixtures (not
    the CRDs: large, and only libyaml reads them)."""
    roots = ["clusters", "examples", "providers", "extensions", "tests/bad_inputs", "tests/fixtures", "everest_render/schemas"]
    files = [p for root in roots for p in sorted((EXAMPLE / root).rglob("*.y*ml")) if "crds" not in p.parts]
    return [p for p in files if p.stat().st_size < 50_000]


def test_every_small_input_file_of_the_repository_is_loaded_alike() -> None:
    files = _input_files()
    read = [assert_loaded_alike(path.read_text(encoding="utf-8", errors="replace")) for path in files]
    assert len(files) > 100
    # The example fleet (what `make bench` copies) goes by the line reader.
    fleet = [r for r, path in zip(read, files, strict=True) if path.parts[-3] == "clusters" or path.parent.name == "clusters"]
    assert fleet and all(fleet)


LOADED_ALIKE = [
    *ALIKE,
    "",
    "# only a comment\n",
    "---\n",
    "a: 1\n---\n",
    "---\n# c\n---\na: 1\n",
    "# c\n---\na: 1\n---\nb: 2\n",
    "a: {b: c, d: [e, 1]}  # a comment\n",
    "a: [10.0.0.0/8, \"2001:db8::1\"]\n",
    "a: {version: 16.13-2}\nb: {cpu: \"1\", memory: 4G}\n",
    "a: plain # comment\nb: \"q\" # comment\nc: # comment\n  d: 1\n",
    "a:\n  - # comment\n    b: 1\n  - x # c\n",
    "a: 'single'\nb: 'it''s'\nc: ['x', y]\n",
    "a: |\n  line\n  # not a comment\n\n  more\nb: 1\n",
    "a: |-\n  x\n\n\nb: 1\n",
    "a: |+\n  x\n\n\nb: 1\n",
    "a: |+\n  x\n\n",
    "a: |+\n  x",
    "a: >\n  folded\n  text\n\n  again\n",
    "a:\n  b: |\n    deep\n  c: 2\n",
    "a:\n- |\n  item\n- >-\n  other\n",
    "- a: |\n    x\n",
    "k:\n  - a: |\n      x\n    b: 1\n",
    "a: |2\n   indented\n",
    "a: |\n  x\n# c\n  y\n",
    "a: |\n    x\n  y\n",
    "a: | # c\n  x\n",
    "a: |\n\n   \n  x\n",
    "a: |\n     \n  x\n",
    "a: |\n",
    "a: {b: *c}\n",
    "a: &x {b: 1}\nc: *x\n",
    "a: {b: 1, b: 2}\n",
    "a: {y: 1}\n",
    "a: [1, 2\n",
    "a: [1,\n  2]\n",
    "a: {\"\u00e9\": 1}\n",
    "\u00e9: 1\ne\u0301: 2\n",
    "a: \"\u00e9\"\nb: caf\u00e9\n",
    "a: " + "[" * 40 + "]" * 40 + "\n",
    "a: " + "[" * 900 + "]" * 900 + "\n",
    "a: 2024-01-01 # a date stays text\n",
    "a: 0755\nb: 1_000 # c\n",
    "a: !!binary aGk=\n",
    "a: x\n--- # c\nb: y\n",
]


@pytest.mark.parametrize("text", LOADED_ALIKE)
def test_input_texts_at_the_edges_of_the_subset_are_loaded_alike_or_left_to_libyaml(text: str) -> None:
    assert_loaded_alike(text)


def test_the_input_subset_takes_what_people_write() -> None:
    taken = {text for text in LOADED_ALIKE if read_input(text) is not None}
    assert {LOADED_ALIKE[len(ALIKE) + i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)} <= taken
    assert read_input("a: |2\n   indented\n") is None and read_input("\u00e9: 1\ne\u0301: 2\n") is None


_INPUT_VALUES = ["x", "1", "x # c", '"q" # c', "{a: b}", "{a: [b, 1]}", "[x, 'y']", "'s'", "'it''s'", "#c", "yes", "1.5"]
_ODD_VALUES = ["{a: *b}", "|2", "[x", "x: y", "&a x", "'s' t", "{a: 1, a: 2}", "y"]
_BLOCK_HEADERS = ["|", "|-", "|+", ">", ">-", "| # c"]
_BODY_LINES = ["t", "t u", "# not a comment", "", "", "  deeper"]


def _input_block(draw: st.DrawFn, indent: int, depth: int) -> list[str]:
    """A mapping or a list in block style as people write it: values of one line, some with a
    comment after them, and literal and folded blocks with their lines."""
    pad = " " * indent
    lines: list[str] = []
    as_list = depth > 0 and draw(st.integers(0, 3)) == 0
    for number in range(draw(st.integers(1, 4))):
        lead = f"{pad}- " if as_list else f"{pad}{draw(st.sampled_from(['a', 'b', 'name', 'spec']))}{number}: "
        kind = draw(st.integers(0, 9))
        if kind <= 1 and depth < 3:
            inner = _input_block(draw, indent + 2, depth + 1)
            if as_list:
                lines.extend([lead + inner[0].lstrip(" "), *inner[1:]])
            else:
                lines.extend([lead.rstrip(" ") + draw(st.sampled_from(["", "  # c"])), *inner])
        elif kind <= 3:
            body = indent + 2 + (2 if as_list else 0)
            lines.append(lead + draw(st.sampled_from(_BLOCK_HEADERS)))
            chosen = draw(st.lists(st.sampled_from(_BODY_LINES), min_size=1, max_size=4))
            lines.extend(" " * body + line if line else draw(st.sampled_from(["", " " * body])) for line in chosen)
        else:
            lines.append(lead + draw(st.sampled_from(_INPUT_VALUES * 4 + _ODD_VALUES)))
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["# c", pad + "# c", ""])))
    return lines


@st.composite
def input_like(draw: st.DrawFn) -> str:
    documents = [_input_block(draw, 0, 0) for _ in range(draw(st.integers(1, 2)))]
    lines = [line for document in documents for line in ["---", *document]][draw(st.integers(0, 1)) :]
    if draw(st.integers(0, 3)) == 0:  # and near it: a line moved or doubled
        at = draw(st.integers(0, len(lines) - 1))
        lines.insert(at, lines[at] if draw(st.booleans()) else " " + lines[at])
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=250, deadline=None)
@given(input_like())
def test_random_input_like_texts_are_loaded_alike_or_left_to_libyaml(text: str) -> None:
    assert_loaded_alike(text)
