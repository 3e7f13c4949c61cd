"""No secret value is echoed, in any output format (the corpus checks the text format)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from everest_render.check.core import URL_CREDENTIALS, holds_url_credentials, object_problems, scalars, strings
from everest_render.check.secrets import is_sensitive_key, sensitive_in
from everest_render.commands.cli import main as cli_main
from everest_render.load.files import MAX_FILE_BYTES
from everest_render.model import ObjectRef, RenderedObject, TextMarks
from everest_render.render.postprocess import flux_would_rewrite, guard_flux_substitution_always
from tests.conftest import mongodb

SECRET = "wJalrXUtnFEMIK7MDENG"
STORAGE = f"""\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {{name: s3, namespace: shop}}
spec:
  type: s3
  bucket: b
  region: {{secretAccessKey: {SECRET}}}
  endpointURL: https://AKIAEXAMPLE:{SECRET}@s3.example.com
  credentialsSecretName: c
"""


def _repo(tmp_path):
    (tmp_path / "clusters/shop").mkdir(parents=True)
    (tmp_path / "clusters/shop/orders.yaml").write_text(mongodb())
    (tmp_path / "clusters/shop/storage.yaml").write_text(STORAGE)
    return tmp_path


def test_the_json_report_masks_credentials(tmp_path):
    result = CliRunner().invoke(cli_main, ["validate", "--repo", str(_repo(tmp_path)), "--format", "json"])
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    messages = [d["message"] for d in report["diagnostics"]]
    assert any("must not carry credentials" in m for m in messages)
    assert any("***" in m for m in messages)
    assert SECRET not in result.stdout + result.stderr and "AKIAEXAMPLE" not in result.stdout + result.stderr


def test_annotations_mask_credentials(tmp_path):
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(_repo(tmp_path)), "--annotations", "github"])
    assert result.exit_code == 3
    assert "::error" in result.stderr and "***" in result.stderr  # reported, masked (not dropped)
    assert SECRET not in result.stdout + result.stderr and "AKIAEXAMPLE" not in result.stderr


def test_a_file_beyond_the_size_limit_is_refused_unread(tmp_path):
    (tmp_path / "clusters/shop").mkdir(parents=True)
    (tmp_path / "clusters/shop/orders.yaml").write_text(mongodb())
    with open(tmp_path / "clusters/shop/huge.yaml", "wb") as huge:
        huge.truncate(MAX_FILE_BYTES + 1)
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(tmp_path), "--quiet"])
    assert result.exit_code == 3
    assert result.stderr == "clusters/shop/huge.yaml:1:1: cannot be read: larger than 8 MiB, the limit for an input file\n"
    assert not (tmp_path / "out").exists()


_URL_PIECES = ["https://", "user:pw@", "tok@", "ssh://", "git+ssh://", "x", "h/p", " ", "\n", "@", ":", "/", "'", "ssh", "s3://", "é"]
_TEXTS = st.lists(st.sampled_from(_URL_PIECES), max_size=6).map("".join)
_VALUES = st.recursive(
    st.one_of(_TEXTS, st.integers(), st.none()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXTS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_VALUES)
def test_one_search_over_every_string_finds_a_url_credential_where_a_search_of_each_does(value):
    each = any(URL_CREDENTIALS.search(text) for _, text in strings(value))
    assert holds_url_credentials(value) == each


def _sensitive_by_path(objects):
    """What may be secret, found as the rule says it: each scalar by its path (the nearest key)."""
    found = set()
    for data in objects:
        if not isinstance(data, dict) or data.get("kind") in ("Provider", "DatabaseClusterDefinition"):
            continue
        for path, value in scalars(data):
            key = next((part for part in reversed(path) if isinstance(part, str)), None)
            in_data = data.get("kind") == "Secret" and path[0] in ("data", "stringData")
            if in_data or (key is not None and is_sensitive_key(key)):
                found.add(str(value))
            for match in URL_CREDENTIALS.finditer(value) if isinstance(value, str) else ():
                found.update([match.group(2), *(part for part in match.group(2).split(":") if part)])
    return frozenset(v for v in found if v)


_KEYS = st.sampled_from(["data", "stringData", "password", "passwordSecretName", "name", "token", "items", "kind", 0, 1])
_DOCUMENTS = st.recursive(
    st.one_of(_TEXTS, st.integers(), st.booleans(), st.none()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Secret", "ConfigMap", "Provider", None]), st.dictionaries(_KEYS, _DOCUMENTS, max_size=4)), max_size=3))
def test_what_may_be_secret_is_what_each_value_s_path_says(documents):
    objects = [{**data, "kind": kind} if kind else data for kind, data in documents]
    assert sensitive_in(objects) == _sensitive_by_path(objects)



# Both searches first read the marks of an object's text (model.TextMarks: its canonical YAML
# for a rendered object, else its JSON), written once for both: they may only say where nothing
# is to be found.
_DOLLAR_TEXTS = st.lists(st.sampled_from([*_URL_PIECES, "$", "${v}", "$$", "{"]), max_size=6).map("".join)
_DOLLAR_VALUES = st.recursive(
    st.one_of(_DOLLAR_TEXTS, st.integers(), st.none()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_DOLLAR_TEXTS, children, max_size=3),
    max_leaves=12,
)


def _keys_and_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys_and_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys_and_strings(item)


@settings(max_examples=100, deadline=None)
@given(_DOLLAR_VALUES)
def test_the_marks_of_an_object_hide_nothing_flux_would_rewrite_in_a_key_or_string(value):
    each = any("${" in text or "$$" in text for text in _keys_and_strings(value))
    assert flux_would_rewrite(value, TextMarks.of(value)) == each


# A rendered object's marks are read from its YAML text, which writes multi-line strings as
# literal blocks (indented after each line break), quotes others, and writes floats its own way.
_YAML_TEXTS = st.lists(st.sampled_from([*_URL_PIECES, "$", "${v}", "$$", "{", "\n\n", "- ", "\u0085", '"']), max_size=8).map("".join)
_YAML_VALUES = st.recursive(
    st.one_of(_YAML_TEXTS, st.integers(), st.none(), st.booleans(), st.floats()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_YAML_TEXTS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_YAML_TEXTS, _YAML_VALUES, max_size=4))
def test_the_marks_of_a_rendered_object_s_yaml_text_hide_nothing_either_search_finds(value):
    marks = RenderedObject(value, ObjectRef("shop", "x"), "t.yaml").marks
    each = any("${" in text or "$$" in text for text in _keys_and_strings(value))
    assert flux_would_rewrite(value, marks) == each
    assert holds_url_credentials(value, marks) == holds_url_credentials(value, TextMarks(dollar=True, url=True))


def test_an_object_flux_would_rewrite_and_holding_a_url_credential_is_guarded_and_refused():
    obj = {"metadata": {"name": "x"}, "data": {"script": "echo ${HOME}", "url": f"https://AKIAEXAMPLE:{SECRET}@s3.example.com"}}
    guarded = guard_flux_substitution_always(RenderedObject(obj, ObjectRef("shop", "x"), "t.yaml"), None)
    assert guarded.obj["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert guarded.marks == TextMarks(dollar=True, url=True)
    problems = object_problems(guarded.obj, marks=guarded.marks)
    assert [path for path, message in problems if "must not carry credentials" in message] == [("data", "url")]


def test_a_url_credential_whose_at_sign_is_an_escape_is_refused_too():
    # The check first asks whether the file holds an "@" at all; an escape writes one without.
    from everest_render.check.secrets import url_credential_problems
    from everest_render.load.documents import parse_yaml
    from everest_render.load.text import SourceFile

    for written in ('"https://AKIAEXAMPLE:x\\u0040s3.example.com"', '"https://AKIAEXAMPLE:x\\x40s3.example.com"', '"https://AKIAEXAMPLE:x@s3.example.com"'):
        documents, problems = parse_yaml(SourceFile("clusters/shop/storage.yaml", f"kind: BackupStorage\nspec:\n  endpointURL: {written}\n"))
        assert not problems
        found = url_credential_problems(documents)
        assert [(d.line, d.column) for d in found] == [(3, 16)], written
        assert "must not carry credentials" in found[0].message
