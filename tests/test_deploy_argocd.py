"""What deploy/argocd/ ships, checked with the real tools: kubectl kustomize against Argo CD's
own repo-server Deployment, Argo CD's CRDs for the examples, a Lua runtime for the health
checks, hadolint for the Dockerfile (no image can be built here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from everest_render.authoring.crd_schema import strict_schema_from_crd
from everest_render.commands.argocd import CHOICES
from tests.conftest import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy/argocd"
ARGO_CD = PROJECT_ROOT / "tests/fixtures/argo-cd/3.5.1"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_plugin_runs_generate_and_discover_and_announces_every_choice_with_its_default():
    plugin = _load(DEPLOY / "plugin.yaml")
    assert plugin["kind"] == "ConfigManagementPlugin" and plugin["metadata"]["name"] == "everest-render"
    assert plugin["spec"]["generate"]["command"] == ["everest-render", "argocd", "generate"]
    assert plugin["spec"]["discover"]["find"]["command"] == ["everest-render", "argocd", "discover"]
    announced = {p["name"]: p["string"] for p in plugin["spec"]["parameters"]["static"]}
    assert announced == CHOICES


# --- the kustomize component, built against Argo CD's real repo-server ---------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize) is not installed")
    base = tmp_path_factory.mktemp("argocd")
    shutil.copy(ARGO_CD / "argocd-repo-server-deployment.yaml", base)
    # install.yaml ships argocd-cm empty; the component merges into it.
    (base / "argocd-cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\n")
    shutil.copytree(DEPLOY, base / "everest-render")
    (base / "kustomization.yaml").write_text(
        "resources: [argocd-repo-server-deployment.yaml, argocd-cm.yaml]\ncomponents: [everest-render]\n"
        "images: [{name: everest-render-cmp, newName: registry.example.com/everest-render-cmp, newTag: '0.1.0'}]\n"
    )
    done = subprocess.run([kubectl, "kustomize", str(base)], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _by_kind(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_the_component_adds_the_sidecar_beside_the_repo_server(built):
    pod = _by_kind(built, "Deployment")["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    assert names == ["argocd-repo-server", "everest-render"]
    sidecar = pod["containers"][1]
    assert sidecar["image"] == "registry.example.com/everest-render-cmp:0.1.0"
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999 and sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    assert mounts == {"/var/run/argocd": "var-files", "/home/argocd/cmp-server/plugins": "plugins", "/tmp": "everest-render-tmp"}
    volumes = {v["name"] for v in pod["volumes"]}
    # var-files and plugins are the repo-server's own volumes (the cmp-server binary, the socket).
    assert {"var-files", "plugins", "everest-render-tmp"} <= volumes
    # The repo-server itself is untouched.
    original = _load(ARGO_CD / "argocd-repo-server-deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert pod["containers"][0] == original


def test_the_component_adds_the_health_checks_to_argocd_cm(built):
    data = _by_kind(built, "ConfigMap")["data"]
    # Every Lua file shipped, under the key Argo CD reads it from (group_Kind).
    expected = {f"resource.customizations.health.{p.stem}": p.read_text() for p in (DEPLOY / "health").glob("*.lua")}
    assert len(expected) == 2 and data == expected
    assert _by_kind(built, "ConfigMap")["metadata"]["name"] == "argocd-cm"  # no hash suffix


def test_the_helm_values_carry_the_same_sidecar():
    patch = {op["path"]: op["value"] for op in yaml.safe_load((DEPLOY / "repo-server-sidecar.yaml").read_text())}
    values = _load(DEPLOY / "helm-values.yaml")["repoServer"]
    (container,) = values["extraContainers"]
    assert {**container, "image": "everest-render-cmp"} == patch["/spec/template/spec/containers/-"]
    assert values["volumes"] == [patch["/spec/template/spec/volumes/-"]]


# --- the examples, against Argo CD's CRDs ---------------------------------------------------


@pytest.mark.parametrize(("example", "crd"), [("application.yaml", "applications"), ("applicationset.yaml", "applicationsets")])
def test_the_examples_are_valid_argo_cd_objects(example, crd):
    definition = _load(ARGO_CD / f"{crd}.argoproj.io.yaml")
    schema = strict_schema_from_crd(definition, "v1alpha1")
    document = _load(DEPLOY / "examples" / example)
    jsonschema.validate(document, schema)
    assert document["spec"]["template" if crd == "applicationsets" else "source"] is not None
    source = document["spec"]["template"]["spec"]["source"] if crd == "applicationsets" else document["spec"]["source"]
    assert source["plugin"]["name"] == "everest-render"


def test_a_wrong_field_in_an_example_would_be_caught():
    schema = strict_schema_from_crd(_load(ARGO_CD / "applications.argoproj.io.yaml"), "v1alpha1")
    document = _load(DEPLOY / "examples/application.yaml")
    document["spec"]["source"]["plugin"]["enviroment"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


# --- the health check, in a real Lua runtime ----------------------------------------------


def _health(status: dict | None, generation: int = 1, script: str = "pgv2.percona.com_PerconaPGCluster", spec: dict | None = None) -> dict:
    lupa = pytest.importorskip("lupa")
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval(f"function(obj)\n{(DEPLOY / 'health' / (script + '.lua')).read_text()}\nend")
    obj: dict = {"metadata": {"name": "orders", "generation": generation}}
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    table = runtime.table_from(_lua_tables(runtime, obj))
    result = check(table)
    return {"status": result["status"], "message": result["message"]}


def _lua_tables(runtime, value):
    if isinstance(value, dict):
        return {k: runtime.table_from(_lua_tables(runtime, v)) if isinstance(v, dict) else v for k, v in value.items()}
    return value


# Status objects as the PG operator writes them (AppState in pkg/apis/pgv2.percona.com/v2:
# initializing, paused, stopping, ready).
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        ({"state": "initializing", "observedGeneration": 1}, "Progressing"),
        ({"state": "ready", "observedGeneration": 1, "postgres": {"size": 3, "ready": 3}}, "Healthy"),
        ({"state": "paused", "observedGeneration": 1}, "Suspended"),
        ({"state": "stopping", "observedGeneration": 1}, "Progressing"),
        ({"state": "error", "observedGeneration": 1}, "Degraded"),
    ],
)
def test_the_postgresql_health_check_reads_the_operator_state(status, expected):
    assert _health(status)["status"] == expected


def test_a_ready_state_for_an_older_generation_is_still_progressing():
    assert _health({"state": "ready", "observedGeneration": 1}, generation=2)["status"] == "Progressing"


# --- the container build file -------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed")
    # DL3008/DL3013 ask for pinned apt/pip versions: pip installs only from the hashed lock here.
    done = subprocess.run([hadolint, "--ignore", "DL3013", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_999_from_the_lock_with_bytecode_compiled():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    final_stage = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]
    assert ["USER", "999"] in final_stage
    assert ["ENTRYPOINT", '["/var/run/argocd/argocd-cmp-server"]'] in final_stage
    assert "HOME=/tmp" in text and "compileall" in text
    installs = [line for line in text.splitlines() if "pip install" in line or "pip wheel" in line]
    assert installs
    # Every install is from the hashed lock, or the project's own wheel with no dependencies.
    for line in installs:
        assert "--require-hashes --no-deps -r requirements" in line or ("--no-deps" in line and "/wheels" in line), line



def test_everything_the_image_copies_from_the_repository_exists():
    # No image can be built here, so a COPY of a path the repository no longer has (a moved
    # folder) would only fail at the administrator's docker build.
    text = (DEPLOY / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ") and "--from=" not in line]
    assert copies
    for sources in copies:
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository does not have"

# CloudNativePG's Pooler reports status.instances (pkg/apis/v1 PoolerStatus).
@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"instances": 3}, None, "Progressing"),
        ({"instances": 3}, {"instances": 1}, "Progressing"),
        ({"instances": 3}, {"instances": 3}, "Healthy"),
        ({}, {"instances": 1}, "Healthy"),  # spec.instances defaults to 1
        ({}, {"instances": 0}, "Progressing"),
    ],
)
def test_the_pooler_health_check_counts_pgbouncer_instances(spec, status, expected):
    assert _health(status, script="postgresql.cnpg.io_Pooler", spec=spec)["status"] == expected
