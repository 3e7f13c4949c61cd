"""`everest-render provider new` and `provider test`: a scaffold that renders and passes its own cases."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from everest_render.authoring.scaffold import least_value
from everest_render.commands.cli import main
from everest_render.pipeline import read_repository, render_repository
from tests.conftest import PROJECT_ROOT

CNPG_CRDS = PROJECT_ROOT / "providers/cloudnative-pg/crds/1.30.0"
PSMDB_CRD = PROJECT_ROOT / "providers/percona-server-mongodb/crds/1.22.0/perconaservermongodbs.psmdb.percona.com.yaml"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def new(repo, *args: str):
    result = run("provider", "new", *args, "--repo", str(repo))
    assert result.exit_code == 0, result.output
    return result


def test_a_scaffold_without_a_crd_renders_and_passes_its_own_cases(tmp_path):
    new(tmp_path, "valkey", "--kind", "example.io/v1/Valkey")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "providers/valkey/README.md",
        "providers/valkey/cases/a-version-not-in-the-catalogue-is-refused.yaml",
        "providers/valkey/cases/the-example-cluster-renders.yaml",
        "providers/valkey/definition.yaml",
        "providers/valkey/examples/cluster.yaml",
        "providers/valkey/provider.yaml",
        "providers/valkey/schemas/Valkey.json",
        "providers/valkey/valkey.yaml.j2",
    ]
    tested = run("provider", "test", "valkey", "--repo", str(tmp_path))
    assert tested.exit_code == 0, tested.output
    assert tested.stdout == "ok   valkey/a-version-not-in-the-catalogue-is-refused.yaml\nok   valkey/the-example-cluster-renders.yaml\n"


def test_the_scaffold_wires_the_engine_replicas_and_image(tmp_path):
    new(tmp_path, "valkey", "--kind", "example.io/v1/Valkey")
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters/example.yaml").write_text((tmp_path / "providers/valkey/examples/cluster.yaml").read_text())
    result = render_repository(read_repository(tmp_path), keep_objects=True)
    assert [str(d) for d in result.diagnostics] == []
    (rendered,) = result.objects
    assert rendered.obj["spec"] == {"replicas": 3, "image": "registry.example.com/valkey:1.0.0"}


@pytest.mark.parametrize(
    ("kind", "crd"),
    [
        ("postgresql.cnpg.io/v1/Pooler", CNPG_CRDS / "poolers.postgresql.cnpg.io.yaml"),
        ("postgresql.cnpg.io/v1/Cluster", CNPG_CRDS / "clusters.postgresql.cnpg.io.yaml"),
        ("psmdb.percona.com/v1/PerconaServerMongoDB", PSMDB_CRD),
    ],
    ids=["cnpg-pooler", "cnpg-cluster", "psmdb"],
)
def test_a_scaffold_from_a_crd_vendors_it_generates_its_schema_and_passes_its_cases(tmp_path, kind, crd):
    new(tmp_path, "engine", "--kind", kind, "--crd", str(crd), "--operator", "op", "--operator-version", "1.2.3")
    assert (tmp_path / f"providers/engine/crds/1.2.3/{crd.name}").read_bytes() == crd.read_bytes()
    assert run("schemas", "--check", "--repo", str(tmp_path)).exit_code == 0
    tested = run("provider", "test", "--repo", str(tmp_path))
    assert tested.exit_code == 0, tested.output
    # The rendered example is valid for the reference implementation too, against the strict schema.
    case = yaml.safe_load((tmp_path / "providers/engine/cases/the-example-cluster-renders.yaml").read_text())
    (rendered,) = list(yaml.safe_load_all(case["stream"]))
    schema = json.loads(next((tmp_path / "providers/engine/schemas").glob("*.json")).read_text())
    jsonschema.Draft202012Validator(schema).validate(rendered)


def test_a_changed_template_fails_its_cases_with_what_differs(tmp_path):
    new(tmp_path, "valkey", "--kind", "example.io/v1/Valkey")
    template = tmp_path / "providers/valkey/valkey.yaml.j2"
    template.write_text(template.read_text().replace("replicas: {{ engine.replicas | tojson }}", "replicas: 1"))
    tested = run("provider", "test", "valkey", "--repo", str(tmp_path))
    assert tested.exit_code == 1
    assert "FAIL valkey/the-example-cluster-renders.yaml: the example cluster renders\n  stream: expected\n" in tested.stdout
    assert "    replicas: 3\n  got\n" in tested.stdout and tested.stdout.endswith("    replicas: 1\n")
    assert "1 of 2 cases hold" in tested.stderr


def test_provider_test_runs_a_built_in_providers_cases(tmp_path):
    tested = run("provider", "test", "cloudnative-pg", "--repo", str(tmp_path))
    assert tested.exit_code == 0, tested.output
    assert tested.stdout.count("\nok   cloudnative-pg/") + tested.stdout.startswith("ok   ") == len(list((PROJECT_ROOT / "providers/cloudnative-pg/cases").glob("*.yaml")))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Valkey", "--kind", "example.io/v1/Valkey"], "provider name 'Valkey' is not an RFC 1123 label"),
        (["valkey", "--kind", "Valkey"], "--kind 'Valkey' is not GROUP/VERSION/KIND"),
        (["valkey", "--kind", "example.io/v1/Valkey", "--crd", str(CNPG_CRDS / "poolers.postgresql.cnpg.io.yaml")], "--crd holds no CustomResourceDefinition of example.io Valkey"),
        (["pooler", "--kind", "postgresql.cnpg.io/v2/Pooler", "--crd", str(CNPG_CRDS / "poolers.postgresql.cnpg.io.yaml")], "without version v2; it has: v1"),
    ],
)
def test_a_request_that_cannot_give_a_working_provider_is_a_usage_error(tmp_path, args, message):
    result = run("provider", "new", *args, "--repo", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "providers").exists()


def test_an_existing_provider_folder_is_never_overwritten(tmp_path):
    new(tmp_path, "valkey", "--kind", "example.io/v1/Valkey")
    before = (tmp_path / "providers/valkey/provider.yaml").read_text()
    result = run("provider", "new", "valkey", "--kind", "other.io/v1/Other", "--repo", str(tmp_path))
    assert result.exit_code == 2 and "providers/valkey already exists" in result.stderr
    assert (tmp_path / "providers/valkey/provider.yaml").read_text() == before


def test_provider_test_names_the_providers_that_have_cases(tmp_path):
    result = run("provider", "test", "nope", "--repo", str(tmp_path))
    assert result.exit_code == 2
    assert "no cases for provider 'nope'; providers with cases: cloudnative-pg" in result.stderr


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string", "default": "session"}, "session"),
        ({"type": "string", "enum": ["rw", "ro"]}, "rw"),
        ({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 2}, "b": {"type": "string"}}}, {"a": 2}),
        ({"type": "array", "minItems": 2, "items": {"type": "boolean"}}, [False, False]),
        ({"type": "string", "minLength": 3}, "xxx"),
        ({"x-kubernetes-int-or-string": True}, 1),
    ],
)
def test_least_value_is_the_smallest_value_a_schema_accepts(schema, value):
    assert least_value(schema) == value
    jsonschema.validate(value, {k: v for k, v in schema.items() if not k.startswith("x-")})
