"""The command line: exit codes, stdout purity, stderr format, --check, nothing written on error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from everest_render.commands.cli import main
from tests.conftest import PROJECT_ROOT, mongodb


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def fleet_repo(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    return repo


def test_render_writes_one_file_per_cluster_and_an_index(fleet_repo):
    result = run("render", "--repo", str(fleet_repo.root))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    out = fleet_repo.root / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [".everest-render-index", "shop/orders.yaml"]


def test_render_stdout_prints_only_the_manifest_stream(fleet_repo):
    result = run("render", "--repo", str(fleet_repo.root), "--stdout")
    assert result.exit_code == 0
    assert result.stderr == ""
    (obj,) = yaml.safe_load_all(result.stdout)
    assert (obj["kind"], obj["metadata"]["name"]) == ("PerconaServerMongoDB", "orders")
    assert not (fleet_repo.root / "out").exists()


def test_render_stdout_is_byte_identical_to_the_written_files(fleet_repo):
    stream = run("render", "--repo", str(fleet_repo.root), "--stdout").stdout_bytes
    run("render", "--repo", str(fleet_repo.root))
    assert stream == (fleet_repo.root / "out/shop/orders.yaml").read_bytes()


def test_invalid_input_exits_3_prints_nothing_on_stdout_and_writes_nothing(fleet_repo):
    run("render", "--repo", str(fleet_repo.root))
    before = (fleet_repo.root / "out/shop/orders.yaml").read_bytes()
    fleet_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: -1}\n"))
    fleet_repo.write("clusters/shop/more.yaml", mongodb(name="more", body="  instances: {}\n"))
    problems = [
        "clusters/shop/more.yaml:8:3: component 'engine' is required by topology standard; list it under spec.instances (at spec.instances)",
        "clusters/shop/orders.yaml:9:24: -1 is less than the minimum of 0 (at spec.instances.engine.replicas)",
    ]
    # The summary closes a write; a stream has none (the stream is the result).
    for args, summary in (([], ["everest-render: 2 errors in 2 files; nothing written"]), (["--stdout"], [])):
        result = run("render", "--repo", str(fleet_repo.root), *args)
        assert result.exit_code == 3
        assert result.stdout == ""
        assert result.stderr.splitlines() == problems + summary
    assert (fleet_repo.root / "out/shop/orders.yaml").read_bytes() == before
    assert not (fleet_repo.root / "out/shop/more.yaml").exists()


def test_a_file_that_is_not_utf8_is_an_error_not_a_traceback(fleet_repo):
    (fleet_repo.root / "clusters/shop/bad.yaml").write_bytes(b"kind: \xff\n")
    result = run("render", "--repo", str(fleet_repo.root))
    assert result.exit_code == 3
    assert result.stderr == "clusters/shop/bad.yaml:1:1: not UTF-8 text (byte 6)\neverest-render: 1 error in 1 file; nothing written\n"


def test_check_exits_0_when_out_is_current_and_1_when_stale(fleet_repo):
    run("render", "--repo", str(fleet_repo.root))
    assert run("render", "--repo", str(fleet_repo.root), "--check").exit_code == 0
    fleet_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    result = run("render", "--repo", str(fleet_repo.root), "--check")
    assert result.exit_code == 1
    assert result.stderr == (
        f"stale: {(fleet_repo.root / 'out/shop/orders.yaml').as_posix()}\n"
        "everest-render: 1 cluster checked; 1 file stale, 0 missing, 0 extra: run everest-render render\n"
    )
    assert result.stdout == ""


def test_check_writes_nothing(fleet_repo):
    result = run("render", "--repo", str(fleet_repo.root), "--check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"missing: {(fleet_repo.root / 'out/shop/orders.yaml').as_posix()}",
                                          f"missing: {(fleet_repo.root / 'out/.everest-render-index').as_posix()}",
                                          "everest-render: 1 cluster checked; 0 files stale, 2 missing, 0 extra: run everest-render render"]
    assert not (fleet_repo.root / "out").exists()


def test_render_prunes_files_it_wrote_but_never_files_it_did_not(fleet_repo):
    fleet_repo.write("clusters/shop/more.yaml", mongodb(name="more"))
    run("render", "--repo", str(fleet_repo.root))
    fleet_repo.write("out/shop/notes.yaml", "kept: true\n")
    (fleet_repo.root / "clusters/shop/more.yaml").unlink()
    run("render", "--repo", str(fleet_repo.root))
    out = fleet_repo.root / "out"
    assert not (out / "shop/more.yaml").exists()
    assert (out / "shop/notes.yaml").read_text() == "kept: true\n"
    assert (out / ".everest-render-index").read_text().splitlines()[1:] == ["shop/orders.yaml"]


def test_usage_error_exits_2():
    assert run("render", "--no-such-option").exit_code == 2
    assert run("explain", "a/b/c").exit_code == 2
    assert run("explain", "shop/").exit_code == 2


def test_options_read_environment_variables(fleet_repo):
    result = run("render", "--stdout", env={"EVEREST_RENDER_REPO": str(fleet_repo.root)})
    assert result.exit_code == 0
    assert "PerconaServerMongoDB" in result.stdout


def test_validate_writes_nothing_and_reports_json(fleet_repo):
    result = run("validate", "--repo", str(fleet_repo.root), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "clusters": ["shop/orders"], "diagnostics": []}
    assert not (fleet_repo.root / "out").exists()


def test_validate_exits_3_on_invalid_input(fleet_repo):
    fleet_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances: {}\n"))
    assert run("validate", "--repo", str(fleet_repo.root)).exit_code == 3


def test_explain_shows_every_default_and_where_it_came_from(fleet_repo):
    result = run("explain", "shop/orders", "--repo", str(fleet_repo.root), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["provider"]["name"] == "percona-server-mongodb"
    assert data["topology"] == {"type": "standard", "config": {}}
    defaults = {d["path"]: d["origin"] for d in data["defaults"]}
    assert defaults["spec.instances.engine.replicas"] == "definition percona-server-mongodb topology standard"
    assert defaults["spec.components.versions.mongod.version"] == "definition percona-server-mongodb catalogue default"
    assert defaults["spec.crVersion"].startswith("provider percona-server-mongodb")
    assert data["components"]["engine"]["image"] == "percona/percona-server-mongodb:8.0.19-7"


def test_explain_text_names_the_versions_and_images(fleet_repo):
    result = run("explain", "shop/orders", "--repo", str(fleet_repo.root))
    assert result.exit_code == 0
    assert "engine: mongod 8.0.19-7  image percona/percona-server-mongodb:8.0.19-7" in result.stdout


def test_explain_of_an_unknown_cluster_exits_3(fleet_repo):
    result = run("explain", "shop/nope", "--repo", str(fleet_repo.root))
    assert result.exit_code == 3
    assert result.stderr == f"error: no DatabaseCluster shop/nope in {fleet_repo.root}\n"


def test_providers_list_names_builtins_and_their_versions(fleet_repo):
    result = run("providers", "list", "--repo", str(fleet_repo.root), "--format", "json")
    assert result.exit_code == 0
    (entry,) = [p for p in json.loads(result.stdout) if p["name"] == "percona-server-mongodb"]
    assert entry["source"] == "built-in"
    assert set(entry["topologies"]) == {"standard", "sharded"}
    assert {"version": "8.0.19-7", "image": "percona/percona-server-mongodb:8.0.19-7", "default": True} in [{k: v[k] for k in ("version", "image", "default")} for v in entry["componentTypes"]["mongod"]]


def test_providers_list_says_when_the_repository_replaces_a_builtin(fleet_repo):
    source = PROJECT_ROOT / "providers/percona-server-mongodb"
    target = fleet_repo.root / "providers/percona-server-mongodb"
    target.mkdir(parents=True)
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    result = run("providers", "list", "--repo", str(fleet_repo.root))
    assert result.exit_code == 0
    assert "percona-server-mongodb (providers/percona-server-mongodb/provider.yaml, replaces the built-in)" in result.stdout


@pytest.mark.parametrize("seed", ["1", "2"])
def test_output_is_byte_identical_across_hash_seeds(seed, tmp_path):
    # Two fresh processes with different PYTHONHASHSEED must write the same bytes.
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "everest_render", "render", "--repo", str(PROJECT_ROOT), "--out", str(out)],
                   check=True, env=env, cwd=PROJECT_ROOT)
    for path in (PROJECT_ROOT / "out").rglob("*.yaml"):
        assert (out / path.relative_to(PROJECT_ROOT / "out")).read_bytes() == path.read_bytes()


def test_stdout_stream_from_a_subprocess_has_no_diagnostics_mixed_in():
    result = subprocess.run([sys.executable, "-m", "everest_render", "render", "--stdout", "--repo", str(PROJECT_ROOT)],
                            capture_output=True, check=True, cwd=PROJECT_ROOT)
    assert result.stderr == b""
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout)}
    assert kinds == {"PerconaPGCluster", "PerconaServerMongoDB", "PerconaXtraDBCluster", "Cluster", "Pooler", "ScheduledBackup"}


def test_kustomization_lists_every_rendered_file_when_asked(fleet_repo):
    fleet_repo.write("clusters/dev/more.yaml", mongodb(name="more", namespace="dev"))
    assert run("render", "--repo", str(fleet_repo.root), "--kustomization").exit_code == 0
    kustomization = yaml.safe_load((fleet_repo.root / "out/kustomization.yaml").read_text())
    assert kustomization == {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                             "resources": ["dev/more.yaml", "shop/orders.yaml"]}
    assert "kustomization.yaml" in (fleet_repo.root / "out/.everest-render-index").read_text()
    assert run("render", "--repo", str(fleet_repo.root), "--check", "--kustomization").exit_code == 0
    # Without the flag the file is no longer wanted: --check says so, render prunes it.
    assert "extra: " + (fleet_repo.root / "out/kustomization.yaml").as_posix() in run("render", "--repo", str(fleet_repo.root), "--check").stderr
    run("render", "--repo", str(fleet_repo.root))
    assert not (fleet_repo.root / "out/kustomization.yaml").exists()


def test_the_stream_never_contains_the_kustomization(fleet_repo):
    result = run("render", "--repo", str(fleet_repo.root), "--stdout", "--kustomization")
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)] == ["PerconaServerMongoDB"]


def test_kubectl_kustomize_builds_the_rendered_folder(fleet_repo):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    run("render", "--repo", str(fleet_repo.root), "--kustomization")
    built = subprocess.run([kubectl, "kustomize", str(fleet_repo.root / "out")], capture_output=True, check=True, text=True)
    assert [d["kind"] for d in yaml.safe_load_all(built.stdout)] == ["PerconaServerMongoDB"]


def test_only_prints_the_selected_clusters_and_namespaces(fleet_repo):
    fleet_repo.write("clusters/shop/more.yaml", mongodb(name="more"))
    fleet_repo.write("clusters/dev/play.yaml", mongodb(name="play", namespace="dev"))
    def names(*args: str) -> list[str]:
        result = run("render", "--repo", str(fleet_repo.root), "--stdout", *args)
        assert result.exit_code == 0, result.stderr
        return [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in yaml.safe_load_all(result.stdout)]
    assert names("--only", "shop/more") == ["shop/more"]
    assert names("--only", "shop") == ["shop/more", "shop/orders"]
    assert names("--only", "dev", "--only", "shop/orders") == ["dev/play", "shop/orders"]


def test_only_still_validates_the_whole_repository(fleet_repo):
    fleet_repo.write("clusters/dev/broken.yaml", mongodb(name="broken", namespace="dev", body="  instances: {}\n"))
    result = run("render", "--repo", str(fleet_repo.root), "--stdout", "--only", "shop/orders")
    assert (result.exit_code, result.stdout) == (3, "")


def test_only_without_stdout_is_a_usage_error(fleet_repo):
    assert run("render", "--repo", str(fleet_repo.root), "--only", "shop").exit_code == 2


def test_a_selection_that_matches_nothing_is_refused_not_printed_empty(fleet_repo):
    result = run("render", "--repo", str(fleet_repo.root), "--stdout", "--only", "nope")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"error: --only nope selects no cluster or namespace of {fleet_repo.root}\n"


def test_the_selection_can_come_from_one_environment_variable(fleet_repo):
    # What an Argo CD plugin passes: several entries separated by spaces; empty means all.
    fleet_repo.write("clusters/dev/play.yaml", mongodb(name="play", namespace="dev"))
    fleet_repo.write("clusters/ops/tool.yaml", mongodb(name="tool", namespace="ops"))
    def namespaces(value: str) -> list[str]:
        result = run("render", "--repo", str(fleet_repo.root), "--stdout", env={"EVEREST_RENDER_ONLY": value})
        assert result.exit_code == 0, result.stderr
        return [d["metadata"]["namespace"] for d in yaml.safe_load_all(result.stdout)]
    assert namespaces("dev shop/orders") == ["dev", "shop"]
    assert namespaces("") == ["dev", "ops", "shop"]


def test_a_symbolic_link_under_out_cannot_lead_the_write_elsewhere(fleet_repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fleet_repo.root / "out").mkdir()
    (fleet_repo.root / "out/shop").symlink_to(elsewhere)
    result = run("render", "--repo", str(fleet_repo.root))
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: refusing to write outside {fleet_repo.root / 'out'}: shop/orders.yaml (a symbolic link?)\n"
        "everest-render: 1 error; nothing written\n"
    )
    assert list(elsewhere.iterdir()) == []
    assert not (fleet_repo.root / "out/.everest-render-index").exists()
