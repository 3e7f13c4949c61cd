"""The example fleet: snapshots that hold exactly out/'s bytes, strict CRD validity, a fresh out/.

The snapshot and CRD tests are written with the package's pytest plugin, as a team tests its own
repository (docs/testing.md): the project's top level is the repository under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from everest_render.emit.output import differences
from everest_render.emit.yaml_text import dump_documents
from everest_render.pipeline import read_repository, render_repository
from everest_render.pytest_plugin import cluster_files
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def fleet():
    result = render_repository(read_repository(PROJECT_ROOT), keep_objects=True)
    assert not result.failed, [str(d) for d in result.diagnostics]
    return result


def _fleet_files() -> list[str]:
    return sorted(render_repository(read_repository(PROJECT_ROOT)).plan.files)


def _ids(path: str) -> str:
    return path.removesuffix(".yaml").replace("/", "-")


@pytest.mark.parametrize("path", cluster_files(PROJECT_ROOT))
def test_rendered_cluster_matches_its_snapshot(everest_rendered, everest_snapshot, path):
    assert everest_rendered.file(path) == everest_snapshot


def _crds_in_effect() -> list[Path]:
    """The CRD folder of each provider's own release, the one the fleet renders for (a preview
    release's CRDs, such as PXC 1.20.0-dev, are not the fleet's)."""
    folders = []
    for provider_file in sorted((PROJECT_ROOT / "providers").glob("*/provider.yaml")):
        operator = yaml.safe_load(provider_file.read_text())["spec"]["operator"]
        folders.append(provider_file.parent / "crds" / operator.get("crds", operator["version"]))
    return folders


def test_every_rendered_object_is_valid_for_the_vendored_crds(everest_crd_check):
    # Against the upstream CRDs themselves (strict), not the providers' generated schemas.
    assert everest_crd_check(*_crds_in_effect()) == []


@pytest.mark.parametrize("path", _fleet_files(), ids=_ids)
def test_committed_out_file_is_what_render_writes(fleet, path):
    assert (PROJECT_ROOT / "out" / path).read_bytes() == fleet.plan.files[path]


def test_committed_out_is_not_stale(fleet):
    assert differences(fleet.plan, PROJECT_ROOT / "out") == []


def _schemas() -> dict[tuple[str, str], dict]:
    found = {}
    for provider_file in sorted((PROJECT_ROOT / "providers").glob("*/provider.yaml")):
        provider = yaml.safe_load(provider_file.read_text())
        for entry in provider["spec"]["objects"]:
            schema = json.loads((provider_file.parent / entry["schema"]).read_text())
            found[(entry["apiVersion"], entry["kind"])] = schema
    return found


def test_every_rendered_object_is_valid_for_the_reference_jsonschema_implementation(fleet):
    # Cross-checks the production validator (jsonschema-rs) with the reference implementation.
    schemas = _schemas()
    for rendered in fleet.objects:
        schema = schemas[(rendered.obj["apiVersion"], rendered.obj["kind"])]
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(rendered.obj)]
        assert errors == [], f"{rendered.cluster}: {errors}"


def test_fleet_covers_every_engine_and_topology(fleet):
    seen = {(c.provider.name, c.topology) for c in fleet.resolved.clusters}
    providers = {p.parent.name for p in (PROJECT_ROOT / "providers").glob("*/provider.yaml")}
    definitions = {
        p.parent.name: yaml.safe_load(p.read_text()) for p in (PROJECT_ROOT / "providers").glob("*/definition.yaml")
    }
    expected = set()
    for name in providers:
        provider = yaml.safe_load((PROJECT_ROOT / "providers" / name / "provider.yaml").read_text())
        definition = definitions[provider["spec"]["databaseClusterDefinition"]]
        expected |= {(name, topology) for topology in definition["spec"]["topologies"]}
    assert expected <= seen


def test_output_reads_back_as_the_rendered_objects(fleet):
    objects = [dict(o.obj) for o in fleet.objects]
    text = dump_documents(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert dump_documents(list(yaml.safe_load_all(text))) == text  # stable under a second pass


def test_out_folder_holds_only_rendered_yaml_and_the_index():
    out = PROJECT_ROOT / "out"
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert present == set(_fleet_files()) | {".everest-render-index"}


def test_rendered_files_are_named_for_their_cluster(fleet):
    for path in fleet.plan.files:
        namespace, file_name = path.split("/")
        assert any(c.ref.namespace == namespace and f"{c.ref.name}.yaml" == file_name for c in fleet.resolved.clusters)
