"""`everest-render editor-schema`: the example fleet validates against it, known mistakes do not."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from everest_render.commands.cli import main
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def validator():
    result = CliRunner().invoke(main, ["editor-schema", "--repo", str(PROJECT_ROOT)])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def inputs() -> list[tuple[str, dict]]:
    found = []
    for folder in ("clusters", "providers"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.yaml")):
            if "cases" in path.parts or "examples" in path.parts:
                continue
            for document in yaml.safe_load_all(path.read_text()):
                if isinstance(document, dict):
                    found.append((path.relative_to(PROJECT_ROOT).as_posix(), document))
    return found


def messages(validator, document) -> list[str]:
    return sorted(e.message for e in validator.iter_errors(document))


def test_every_input_of_the_example_fleet_and_every_built_in_validates(validator):
    problems = {path: messages(validator, document) for path, document in inputs()}
    assert {path: found for path, found in problems.items() if found} == {}
    kinds = {document["kind"] for _, document in inputs()}
    assert {"DatabaseCluster", "BackupStorage", "MonitoringConfig", "Instance", "Provider", "DatabaseClusterDefinition"} <= kinds


def orders() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "clusters/apps/orders.yaml").read_text())


def mistake(change) -> dict:
    document = copy.deepcopy(orders())
    change(document["spec"])
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.update(provider="cloudnative-pgg"), "'cloudnative-pgg' is not one of"),
        (lambda s: s.update(topology={"type": "sharded"}), "'sharded' is not one of ['standard']"),
        (lambda s: s["instances"].update(configServer={}), "'configServer' is not one of ['backupAgent', 'engine', 'proxy']"),
        (lambda s: s.update(components={"versions": {"postgresql": {"version": "13"}}}), "'13' is not one of"),
        (lambda s: s.update(components={"versions": {"mongod": {"version": "8.0.19-7"}}}), "Additional properties are not allowed ('mongod' was unexpected)"),
        (lambda s: s["topology"]["config"].update(retentionPolicy="7 copies"), "'7 copies' does not match"),
        (lambda s: s["instances"]["proxy"].update(type="haproxy"), "'haproxy' is not one of ['pgbouncer']"),
        (lambda s: s["instances"].pop("engine"), "'engine' is a required property"),
    ],
    ids=["unknown-provider", "unknown-topology", "component-not-allowed", "version-not-in-catalogue",
         "type-not-in-definition", "topology-config", "type-not-allowed", "required-component"],
)
def test_known_mistakes_fail_the_schema(validator, change, expected):
    assert messages(validator, orders()) == []
    found = messages(validator, mistake(change))
    assert any(expected in m for m in found), found


def test_the_topology_may_be_left_out_when_the_definition_has_a_default(validator):
    document = orders()
    document["spec"]["topology"].pop("config")
    document["spec"].pop("topology")
    document["spec"]["instances"]["configServer"] = {}
    assert any("'configServer' is not one of" in m for m in messages(validator, document))


def test_a_kind_the_renderer_passes_through_is_not_constrained(validator):
    assert messages(validator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}, "whatever": 1}) == []


def test_the_schema_is_deterministic_and_written_with_out(tmp_path):
    out = tmp_path / ".vscode/everest-render.schema.json"
    first = CliRunner().invoke(main, ["editor-schema", "--repo", str(PROJECT_ROOT), "--out", str(out)])
    assert first.exit_code == 0 and first.stdout == ""
    again = CliRunner().invoke(main, ["editor-schema", "--repo", str(PROJECT_ROOT)])
    assert out.read_text() == again.stdout


def test_a_repositorys_own_provider_is_in_its_schema(tmp_path):
    assert CliRunner().invoke(main, ["provider", "new", "valkey", "--kind", "example.io/v1/Valkey", "--repo", str(tmp_path)]).exit_code == 0
    schema = json.loads(CliRunner().invoke(main, ["editor-schema", "--repo", str(tmp_path)]).stdout)
    providers = schema["$defs"]["DatabaseCluster"]["allOf"][1]["properties"]["spec"]["properties"]["provider"]["enum"]
    assert "valkey" in providers and "cloudnative-pg" in providers


def instance_with(provider: dict, version: str) -> dict:
    spec = {**provider, "version": version, "components": {"engine": {}}}
    return {"apiVersion": "core.openeverest.io/v1alpha1", "kind": "Instance", "metadata": {"name": "orders", "namespace": "shop"}, "spec": spec}


@pytest.mark.parametrize("provider", [{"providerRef": {"name": "percona-server-mongodb"}}, {"provider": "psmdb-operator"}], ids=["era-d", "era-c-alias"])
def test_an_instances_bundle_is_one_of_its_providers(validator, provider):
    assert messages(validator, instance_with(provider, "8.0.12")) == []
    assert any("'8.0.13' is not one of ['8.0.12'" in m for m in messages(validator, instance_with(provider, "8.0.13")))


def test_a_bundle_is_described_by_its_versions():
    schema = json.loads(CliRunner().invoke(main, ["editor-schema", "--repo", str(PROJECT_ROOT)]).stdout)
    text = json.dumps(schema)
    assert '"default": "8.0.12"' in text and "backupAgent 2.11.0, configServer 8.0.12-4, engine 8.0.12-4" in text


def test_a_database_clusters_bundle_is_one_of_its_definitions(validator):
    cluster = {
        "apiVersion": "everest.percona.com/v2alpha1",
        "kind": "DatabaseCluster",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {"provider": "percona-server-mongodb", "components": {"bundle": "8.0.12"}, "instances": {"engine": {}}},
    }
    assert messages(validator, cluster) == []
    cluster["spec"]["components"]["bundle"] = "8.0.13"
    assert any("'8.0.13' is not one of ['8.0.12'" in m for m in messages(validator, cluster))
