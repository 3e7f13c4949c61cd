"""Fuzzing: valid repositories, mutated, never crash the renderer or leak past its checks.

Each example takes a valid repository (the example fleet's shop namespace, or a small provider
of the repository's own with its definition, template and schema), mutates one of its files
(tags, keys YAML readers disagree on, huge numbers, control characters, stray Unicode, long
values, deep nesting, aliases, truncation, duplication, Jinja snippets in the template) and
renders it through the command line. The render must exit 0 or 3; on 3, nothing is on stdout,
nothing is written, no traceback; on 0, the output holds no Secret data.

CI runs a few examples, the same every time (derandomized); `make fuzz` runs many, random:
EVEREST_FUZZ_EXAMPLES sets how many per target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from everest_render.commands.cli import main as cli_main
from tests.conftest import PROJECT_ROOT

LONG = "EVEREST_FUZZ_EXAMPLES" in os.environ
# In `make test` a smoke run, the same examples every time and about a second per target on CI;
# what fuzzing found is kept as cases of the bad-input corpus, which every run checks.
CI_EXAMPLES = 5
FUZZ = settings(
    max_examples=int(os.environ.get("EVEREST_FUZZ_EXAMPLES", str(CI_EXAMPLES))),
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SNIPPETS = [
    "!!binary ", "!!int ", "!!float ", "!!timestamp ", "!!python/object:os.system ", "!!set ", "!!omap ", "!vault ", "!!str ",
    "on: 1\n", "yes: x\n", "1: x\n", "~: x\n", "<<: *a\n", "&a ", "*a ", "? [a]\n: b\n",
    "9" * 30, "0x" + "F" * 20, ".inf", ".nan", "-1", "0", "1e999", "null", "~", "true", "",
    '"\\0"', '"\\x7f"', '"\\ud800"', '"\\a"', "\x00", "\x7f", "\x1b", "\ufeff", "\u202e", "\U0001f600", "é", "e\u0301",
    "\x80", "\x9f", "\uffff", "\x85",
    "[", "]", "{", "}", "---\n", "...\n", "- ", ": ", "#", "'", '"', "\t", "\n", "  ", "|\n", ">-\n",
    "${VAR}", "https://user:pass@host", "kind: List\nitems: []\n", "kind: Secret\n", "stringData: {a: b}\n",
    "sops: {}\n", "status: {}\n", "uid: x\n", "metadata: {}\n", "namespace: Bad_Namespace\n", "name: x/../y\n",
    "apiVersion: everest.percona.com/v2alpha\n", "kind: DatabaseCLuster\n", "kind: BackupStorge\n",
    "y: x\n", "0o17: x\n", "1e3: x\n", "kind: List\nitems: [{kind: Secret, apiVersion: v1, stringData: {a: b}}]\n",
    # sizes: a long value, deep nesting, an alias fan-out
    "x" * 70_000, "[" * 1_200, "&b [*a, *a, *a, *a, *a, *a, *a, *a]\n",
]
JINJA = [
    "{{ cluster }}", "{{ required }}", "{% for i in range(3) %}x{% endfor %}", "{{ 'a' * 4 }}", "{{ 2 ** 8 }}", "{% if %}",
    "{{ undefined_thing }}", "{{ fail('no') }}", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{{ ''.__class__ }}",
    "{{ range(10) | list }}", "{% raw %}", "{#", "{{ cluster.name | tojson }}", "{{ cluster.namespace }}", "---\napiVersion: v1\nkind: ConfigMap\n",
]


@st.composite
def mutated(draw: st.DrawFn, text: str, extra: list[str]) -> str:
    pieces = st.one_of(st.sampled_from(SNIPPETS + extra), st.text(max_size=6))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        if operation == "insert":
            text = text[:position] + draw(pieces) + text[position:]
        elif operation == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 20)) :]
        elif operation == "replace":
            text = text[:position] + draw(pieces) + text[position + draw(st.integers(1, 8)) :]
        elif operation == "duplicate":
            lines = text.splitlines(keepends=True)
            if lines:
                index = draw(st.integers(0, len(lines) - 1))
                lines.insert(index, lines[index])
                text = "".join(lines)
        else:
            text = text[:position]
    return text


def _render(files: dict[str, str]) -> None:
    """Render the repository ``files`` through the CLI; fail on anything but exit 0 or 3."""
    with tempfile.TemporaryDirectory(prefix="everest-fuzz-") as scratch:
        root = Path(scratch)
        for name, text in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8", "surrogatepass"))
        result = CliRunner().invoke(cli_main, ["render", "--repo", str(root), "--quiet", "--jobs", "1"])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.stderr
        assert result.exit_code in (0, 3), result.stderr
        event(f"exit {result.exit_code}")
        if result.exit_code == 3:
            assert result.stdout == ""
            assert not (root / "out").exists()
            assert all(":" in line for line in result.stderr.splitlines()), result.stderr
        else:
            for path in (root / "out").rglob("*.yaml"):
                for document in yaml.safe_load_all(path.read_text()):
                    if isinstance(document, dict) and document.get("kind") == "Secret" and "sops" not in document:
                        assert not document.get("data") and not document.get("stringData"), path
                    # A list's items would be applied unchecked (a Secret with data among them).
                    if isinstance(document, dict) and str(document.get("kind")).endswith("List"):
                        assert document.get("kind") != "List" and not isinstance(document.get("items"), list), path


def _fleet_files() -> dict[str, str]:
    folder = PROJECT_ROOT / "clusters/shop"
    return {f"clusters/shop/{p.name}": p.read_text() for p in sorted(folder.glob("*.yaml"))}


SMALL_PROVIDER = {
    "definitions/tiny.yaml": """apiVersion: everest.percona.com/v2alpha1
kind: DatabaseClusterDefinition
metadata: {name: tiny}
spec:
  componentTypes:
    db: {versions: [{version: "1.0", image: "db:1.0", default: true}]}
  components: {engine: {type: db}}
  topologies:
    standard: {components: {engine: {}}}
""",
    "providers/tiny/provider.yaml": """apiVersion: everest.percona.com/v2alpha1
kind: Provider
metadata: {name: tiny}
spec:
  databaseClusterDefinition: tiny
  operator: {name: tiny-operator, version: 1.0.0}
  templates: [main.yaml.j2]
  objects: [{apiVersion: v1, kind: ConfigMap, schema: configmap.json}]
  secrets:
    - {name: "cluster.name ~ '-users'", keys: [password], createdBy: user}
""",
    "providers/tiny/configmap.json": '{"type": "object", "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}}}\n',
    "providers/tiny/main.yaml.j2": """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ cluster.name | tojson }}
data:
  replicas: {{ (components.engine.replicas | string) | tojson }}
  image: {{ components.engine.image | tojson }}
""",
    "clusters/ns/db.yaml": """apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata: {name: db, namespace: ns, labels: {team: a}}
spec:
  provider: tiny
  instances: {engine: {replicas: 3}}
""",
}


@FUZZ
@given(data=st.data())
def test_mutated_clusters_render_or_fail_closed(data: st.DataObject) -> None:
    files = _fleet_files()
    name = data.draw(st.sampled_from(sorted(files)))
    files[name] = data.draw(mutated(files[name], []))
    _render(files)


@FUZZ
@given(data=st.data())
def test_mutated_definitions_and_providers_render_or_fail_closed(data: st.DataObject) -> None:
    files = dict(SMALL_PROVIDER)
    name = data.draw(st.sampled_from(["definitions/tiny.yaml", "providers/tiny/provider.yaml", "providers/tiny/configmap.json"]))
    files[name] = data.draw(mutated(files[name], ['"type": 12', "{", "[]", '"$ref": "#/x"', '"pattern": "("']))
    _render(files)


@FUZZ
@given(data=st.data())
def test_mutated_templates_and_their_output_render_or_fail_closed(data: st.DataObject) -> None:
    files = dict(SMALL_PROVIDER)
    files["providers/tiny/main.yaml.j2"] = data.draw(mutated(files["providers/tiny/main.yaml.j2"], JINJA))
    _render(files)


@FUZZ
@given(data=st.data())
def test_a_mutated_copy_of_a_built_in_template_renders_or_fails_closed(data: st.DataObject) -> None:
    files = _fleet_files()
    source = PROJECT_ROOT / "providers/percona-server-mongodb"
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".j2", ".json") and "cases" not in path.parts:
            files[f"providers/percona-server-mongodb/{path.relative_to(source).as_posix()}"] = path.read_text()
    name = data.draw(st.sampled_from(["providers/percona-server-mongodb/_macros.j2", "providers/percona-server-mongodb/perconaservermongodb.yaml.j2"]))
    files[name] = data.draw(mutated(files[name], JINJA))
    _render(files)


def test_the_fuzz_targets_start_from_valid_repositories() -> None:
    """Unmutated, each base repository renders: the mutations are what fails."""
    for files in (_fleet_files(), SMALL_PROVIDER):
        with tempfile.TemporaryDirectory() as scratch:
            for name, text in files.items():
                (Path(scratch) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(scratch) / name).write_text(text)
            result = CliRunner().invoke(cli_main, ["render", "--repo", scratch, "--quiet"])
            assert result.exit_code == 0, result.stderr
            shutil.rmtree(Path(scratch) / "out")
