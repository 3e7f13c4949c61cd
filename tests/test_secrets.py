"""No secret value is echoed, in any output format (the corpus checks the text format)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from everest_render.check.core import URL_CREDENTIALS, holds_url_credentials, scalars, strings
from everest_render.check.secrets import is_sensitive_key, sensitive_in
from everest_render.commands.cli import main as cli_main
from everest_render.load.files import MAX_FILE_BYTES
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
