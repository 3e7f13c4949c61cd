"""The providers' compact schemas are exactly what the vendored upstream CRDs generate."""

from __future__ import annotations

import shutil

import pytest

from everest_render.authoring.crd_schema import expected_schemas, strict_schema_from_crd
from tests.conftest import PROJECT_ROOT

SCHEMAS = list(expected_schemas(PROJECT_ROOT))


@pytest.mark.parametrize("target,text", SCHEMAS, ids=[str(t.relative_to(PROJECT_ROOT)) for t, _ in SCHEMAS])
def test_committed_schema_is_generated_from_the_vendored_crd(target, text):
    assert target.read_text() == text, "stale: run `make schemas`"


PSMDB_CRD = PROJECT_ROOT / "providers/percona-server-mongodb/crds/1.22.0/perconaservermongodbs.psmdb.percona.com.yaml"


# In the provider's own folder (crds/<operator.version>/), or in a repository laid out before
# provider folders held CRDs, the top-level crds/<operator.name>/<operator.version>/.
@pytest.mark.parametrize("crd_folder", ["providers/psmdb/crds/1.22.0", "crds/percona-server-mongodb-operator/1.22.0"])
def test_the_schemas_command_checks_and_writes(tmp_path, crd_folder):
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    provider = PROJECT_ROOT / "providers/percona-server-mongodb"
    (tmp_path / "providers/psmdb/schemas").mkdir(parents=True)
    (tmp_path / "providers/psmdb/provider.yaml").write_text((provider / "provider.yaml").read_text())
    (tmp_path / crd_folder).mkdir(parents=True)
    (tmp_path / crd_folder / PSMDB_CRD.name).write_bytes(PSMDB_CRD.read_bytes())
    runner = CliRunner()
    stale = runner.invoke(main, ["schemas", "--repo", str(tmp_path), "--check"])
    assert (stale.exit_code, stale.stderr) == (1, "stale: providers/psmdb/schemas/PerconaServerMongoDB.json (run everest-render schemas)\n")
    assert runner.invoke(main, ["schemas", "--repo", str(tmp_path)]).exit_code == 0
    assert (tmp_path / "providers/psmdb/schemas/PerconaServerMongoDB.json").read_bytes() == (provider / "schemas/PerconaServerMongoDB.json").read_bytes()
    assert runner.invoke(main, ["schemas", "--repo", str(tmp_path), "--check"]).exit_code == 0


def test_a_provider_folders_own_crds_are_read_before_the_top_level_ones(tmp_path):
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    provider = PROJECT_ROOT / "providers/percona-server-mongodb"
    (tmp_path / "providers/psmdb/schemas").mkdir(parents=True)
    (tmp_path / "providers/psmdb/provider.yaml").write_text((provider / "provider.yaml").read_text())
    (tmp_path / "providers/psmdb/schemas/PerconaServerMongoDB.json").write_bytes((provider / "schemas/PerconaServerMongoDB.json").read_bytes())
    (tmp_path / "providers/psmdb/crds/1.22.0").mkdir(parents=True)
    (tmp_path / "providers/psmdb/crds/1.22.0" / PSMDB_CRD.name).write_bytes(PSMDB_CRD.read_bytes())
    # A stale copy at the top level (another field) would make the schema stale if it were read.
    (tmp_path / "crds/percona-server-mongodb-operator/1.22.0").mkdir(parents=True)
    (tmp_path / "crds/percona-server-mongodb-operator/1.22.0" / PSMDB_CRD.name).write_text(
        PSMDB_CRD.read_text().replace("unsafeFlags:", "unsafeFlagz:", 1)
    )
    result = CliRunner().invoke(main, ["schemas", "--repo", str(tmp_path), "--check"])
    assert (result.exit_code, result.stderr) == (0, "")
    shutil.rmtree(tmp_path / "providers/psmdb/crds")  # ... and the stale copy is read without it
    assert CliRunner().invoke(main, ["schemas", "--repo", str(tmp_path), "--check"]).exit_code == 1


def test_a_provider_without_its_crd_is_an_error(tmp_path):
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    (tmp_path / "providers/psmdb").mkdir(parents=True)
    (tmp_path / "providers/psmdb/provider.yaml").write_text((PROJECT_ROOT / "providers/percona-server-mongodb/provider.yaml").read_text())
    result = CliRunner().invoke(main, ["schemas", "--repo", str(tmp_path)])
    assert result.exit_code == 3
    assert result.stderr == "error: no CRD for psmdb.percona.com/v1 PerconaServerMongoDB under crds/percona-server-mongodb-operator/1.22.0/\n"


def test_strict_schema_closes_objects_and_drops_status():
    crd = {
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Thing"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "description": "x", "properties": {
                        "size": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
                        "maybe": {"type": "string", "nullable": True},
                    }},
                    "status": {"type": "object"},
                },
            }}}],
        },
    }
    schema = strict_schema_from_crd(crd, "v1")
    spec = schema["properties"]["spec"]
    assert "status" not in schema["properties"]
    assert spec["additionalProperties"] is False and "description" not in spec
    assert "additionalProperties" not in spec["properties"]["free"]
    assert spec["properties"]["maybe"]["type"] == ["string", "null"]
    assert schema["properties"]["kind"] == {"const": "Thing"}
    assert schema["properties"]["apiVersion"] == {"const": "example.com/v1"}


def test_nullable_objects_stay_closed_and_nullable_int_or_string_accepts_null():
    import jsonschema_rs

    crd = {
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Thing"}, "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "box": {"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}},
                "size": {"x-kubernetes-int-or-string": True, "nullable": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            }}},
        }}}]},
    }
    validator = jsonschema_rs.validator_for(strict_schema_from_crd(crd, "v1"))
    base = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x", "namespace": "y"}}
    assert validator.is_valid({**base, "spec": {"box": None, "size": None}})
    assert validator.is_valid({**base, "spec": {"box": {"a": "b"}, "size": "1Gi"}})
    assert not validator.is_valid({**base, "spec": {"box": {"unknown": 1}}})
