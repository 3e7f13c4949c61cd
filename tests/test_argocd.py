"""The Argo CD plugin: the application's choices, its repository, and generate run as the CMP
server runs it (a copy of the repository, only the CMP server's environment, a read-only
package with bytecode writing disabled, a uid that is not 0)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from everest_render.commands.argocd import (
    ApplicationChoices,
    ChoiceError,
    application_source,
    discover,
    read_choices,
    split_selection,
)
from everest_render.commands.cli import main
from everest_render.parallel import cgroup_cpu_quota
from tests.conftest import PROJECT_ROOT

# --- the application's choices -----------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {"ARGOCD_ENV_ONLY": "shop dev/sandbox"},
        {"PARAM_ONLY": "shop,dev/sandbox"},
        {"PARAM_ONLY_0": "shop", "PARAM_ONLY_1": "dev/sandbox"},
        {"ARGOCD_APP_PARAMETERS": json.dumps([{"name": "only", "string": "shop\ndev/sandbox"}])},
        {"ARGOCD_APP_PARAMETERS": json.dumps([{"name": "only", "array": ["shop", "dev/sandbox"]}])},
        # The same value in several forms is fine (Argo CD sets PARAM_* and the JSON together).
        {"PARAM_ONLY": "shop dev/sandbox", "ARGOCD_APP_PARAMETERS": json.dumps([{"name": "only", "string": "shop, dev/sandbox"}])},
    ],
)
def test_every_form_argo_cd_passes_a_selection_in_means_the_same(environ):
    assert read_choices(environ) == ApplicationChoices(only=("shop", "dev/sandbox"), allow_empty=False)


def test_allow_empty_is_read_in_every_form_and_unknown_parameters_are_left_alone():
    assert read_choices({"ARGOCD_ENV_ALLOW_EMPTY": "true"}).allow_empty
    assert read_choices({"PARAM_ALLOW_EMPTY": "yes"}).allow_empty
    parameters = [{"name": "allow-empty", "string": "true"}, {"name": "team", "string": "x"}]
    assert read_choices({"ARGOCD_APP_PARAMETERS": json.dumps(parameters)}) == ApplicationChoices((), True)
    assert read_choices({}) == ApplicationChoices((), False)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARGOCD_ENV_ONLY": "shop", "PARAM_ONLY": "dev"}, "only: ARGOCD_ENV_ONLY says 'shop' but PARAM_ONLY says 'dev'; set it in one place"),
        ({"PARAM_ALLOW_EMPTY": "maybe"}, "allow-empty: expected true or false, got 'maybe'"),
        ({"ARGOCD_APP_PARAMETERS": "[{"}, "ARGOCD_APP_PARAMETERS is not JSON: Expecting property name enclosed in double quotes at character 2"),
        ({"ARGOCD_APP_PARAMETERS": json.dumps([{"name": "only", "map": {"a": "b"}}])}, "only: a map parameter"),
    ],
)
def test_contradicting_or_malformed_choices_are_refused(environ, message):
    with pytest.raises(ChoiceError) as error:
        read_choices(environ)
    assert str(error.value).startswith(message)


def test_selections_split_on_spaces_commas_and_newlines():
    assert split_selection(" shop,dev/sandbox\n\tbilling ,, ") == ("shop", "dev/sandbox", "billing")


# --- where the repository is -------------------------------------------------------------


def test_the_repository_root_is_the_application_directory_minus_its_path(tmp_path):
    app = tmp_path / "repo/clusters/shop"
    assert application_source(app, "clusters/shop") == application_source(app, "./clusters/shop/")
    source = application_source(app, "clusters/shop")
    assert (source.root, source.folder) == (tmp_path / "repo", "clusters/shop")
    assert application_source(tmp_path, ".").folder == ""
    assert application_source(tmp_path, None).root == tmp_path
    with pytest.raises(ChoiceError, match="does not end with"):
        application_source(tmp_path / "elsewhere", "clusters/shop")
    with pytest.raises(ChoiceError, match="leaves the repository"):
        application_source(app, "../x")


# --- the container's CPU limit -----------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_cpu_quota_is_read_for_v2_and_v1(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == cpus


# --- discovery ---------------------------------------------------------------------------


def test_discovery_answers_for_clusters_and_instances_only(tmp_path):
    flux = tmp_path / "flux/clusters/production"
    flux.mkdir(parents=True)
    (flux / "kustomization.yaml").write_text("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps}\n")
    assert discover(tmp_path / "flux") is None
    ours = tmp_path / "ours/clusters/shop"
    ours.mkdir(parents=True)
    (ours / "orders.yaml").write_text("---\napiVersion: v1\nkind: Namespace\n---\napiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\n")
    assert discover(tmp_path / "ours") == "clusters/shop/orders.yaml"
    (ours / "orders.yaml").write_text("apiVersion: core.openeverest.io/v1alpha1\nkind: Instance\n")
    assert discover(tmp_path / "ours") == "clusters/shop/orders.yaml"
    # Another group's kind of the same name is not ours.
    (ours / "orders.yaml").write_text("apiVersion: example.com/v1\nkind: Instance\n")
    assert discover(tmp_path / "ours") is None


def test_discovery_ignores_out(tmp_path):
    (tmp_path / "out/shop").mkdir(parents=True)
    (tmp_path / "out/shop/x.yaml").write_text("apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\n")
    assert discover(tmp_path) is None


# --- generate, as the CMP server runs it -------------------------------------------------


def _cmp_copy(destination: Path) -> Path:
    """The application's repository as the CMP server unpacks it: a copy, modes reset."""
    shutil.copytree(PROJECT_ROOT / "clusters", destination / "clusters")
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination


def _read_only_package(destination: Path) -> Path:
    """The package and its built-ins in a folder nobody can write to (an image's site-packages)."""
    shutil.copytree(PROJECT_ROOT / "everest_render", destination / "everest_render", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("definitions", "providers"):
        if (PROJECT_ROOT / folder).is_dir():  # the built-in definitions live in their provider folders
            shutil.copytree(PROJECT_ROOT / folder, destination / folder)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return destination


@pytest.fixture(scope="module")
def cmp_world():
    """A world-readable scratch folder (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="everest-cmp-"))
    base.chmod(0o755)
    package = _read_only_package(base / "site")
    yield base, package
    for path in [base, *base.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(base)


def _generate(cmp_world, app_path: str, extra: dict[str, str], repo: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    base, package = cmp_world
    if repo is None:
        repo = _cmp_copy(base / f"repo-{len(list(base.iterdir()))}")
    app_dir = repo / app_path
    environ = {
        # What the CMP server sets, and nothing of this machine's environment.
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "PYTHONPATH": str(package),
        "PYTHONDONTWRITEBYTECODE": "1",
        "ARGOCD_APP_NAME": "databases-shop",
        "ARGOCD_APP_NAMESPACE": "argocd",
        "ARGOCD_APP_REVISION": "0123456789abcdef0123456789abcdef01234567",
        "ARGOCD_APP_SOURCE_PATH": app_path,
        "ARGOCD_APP_SOURCE_REPO_URL": "https://git.example.com/platform/databases.git",
        "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
        "KUBE_VERSION": "1.33.0",
        "KUBE_API_VERSIONS": "v1,apps/v1",
        **extra,
    }
    interpreter, user, site_packages = _cmp_interpreter()
    environ["PYTHONPATH"] = os.pathsep.join([str(package), *site_packages])
    return subprocess.run(
        [interpreter, "-m", "everest_render", "argocd", "generate"],
        cwd=app_dir,
        env=environ,
        capture_output=True,
        user=user,
        timeout=120,
        check=False,
    )


CMP_UID = 999  # Argo CD's repo-server user


def _cmp_interpreter() -> tuple[str, int | None, list[str]]:
    """A Python that uid 999 can run, with this environment's packages on its path. As root,
    the venv's interpreter may live where 999 cannot reach (pyenv under /root): then the
    system's Python of the same version runs the same site-packages."""
    import site
    import sysconfig

    if os.geteuid() != 0:
        return sys.executable, None, []  # already not root
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin")):
        if candidate is None:
            continue
        probe = subprocess.run([candidate, "-c", "pass"], user=CMP_UID, capture_output=True, check=False) if _runnable(candidate) else None
        if probe is not None and probe.returncode == 0:
            return candidate, CMP_UID, list(dict.fromkeys([sysconfig.get_paths()["purelib"], *site.getsitepackages()]))
    pytest.skip(f"no {version} that uid {CMP_UID} can run on this machine")


def _runnable(candidate: str) -> bool:
    try:
        subprocess.run([candidate, "-c", "pass"], user=CMP_UID, capture_output=True, check=False, timeout=30)
    except PermissionError:
        return False
    return True


def _render_stdout(*only: str) -> bytes:
    args = ["render", "--stdout", "--repo", str(PROJECT_ROOT), *[a for entry in only for a in ("--only", entry)]]
    result = CliRunner().invoke(main, args, env={"EVEREST_RENDER_JOBS": "1"})
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def test_generate_prints_exactly_what_render_stdout_prints(cmp_world):
    done = _generate(cmp_world, ".", {"ARGOCD_ENV_ONLY": "shop"})
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == _render_stdout("shop")
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("everest-render: databases-shop: ") and line.endswith(" s")


def test_generate_for_a_namespace_folder_renders_what_is_written_under_it(cmp_world):
    done = _generate(cmp_world, "clusters/shop", {})
    assert done.returncode == 0, done.stderr.decode()
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    files = {p.relative_to(PROJECT_ROOT / "clusters/shop") for p in (PROJECT_ROOT / "clusters/shop").rglob("*.yaml")}
    assert files and documents
    assert {d["metadata"]["namespace"] for d in documents} == {"shop"}
    # The Instance in clusters/v2/ is in namespace shop too, but not in this application's folder.
    assert "inventory" not in {d["metadata"]["name"] for d in documents}


def test_generate_parameters_mean_what_plugin_env_means(cmp_world):
    parameters = json.dumps([{"name": "only", "array": ["shop", "dev"]}])
    by_parameters = _generate(cmp_world, ".", {"ARGOCD_APP_PARAMETERS": parameters, "PARAM_ONLY_0": "shop", "PARAM_ONLY_1": "dev"})
    by_env = _generate(cmp_world, ".", {"ARGOCD_ENV_ONLY": "dev,shop"})
    assert by_parameters.returncode == by_env.returncode == 0
    assert by_parameters.stdout == by_env.stdout == _render_stdout("shop", "dev")


def test_generate_refuses_an_empty_render_unless_the_application_allows_it(cmp_world):
    refused = _generate(cmp_world, "clusters/shop", {"ARGOCD_ENV_ONLY": "dev"})
    assert (refused.returncode, refused.stdout) == (3, b"")
    assert "refusing an empty render (it would prune every database)" in refused.stderr.decode()
    allowed = _generate(cmp_world, "clusters/shop", {"ARGOCD_ENV_ONLY": "dev", "ARGOCD_ENV_ALLOW_EMPTY": "true"})
    assert (allowed.returncode, allowed.stdout) == (0, b"")


def test_generate_refuses_a_selection_entry_that_names_nothing(cmp_world):
    done = _generate(cmp_world, ".", {"ARGOCD_ENV_ONLY": "shop shpo"})
    assert (done.returncode, done.stdout) == (3, b"")
    assert done.stderr.decode() == "error: databases-shop: only=shpo names no cluster or namespace of the repository\n"


def test_generate_contradicting_choices_are_a_usage_error_with_nothing_on_stdout(cmp_world):
    done = _generate(cmp_world, ".", {"ARGOCD_ENV_ONLY": "shop", "PARAM_ONLY": "dev"})
    assert (done.returncode, done.stdout) == (2, b"")


def test_generate_errors_print_nothing_on_stdout(cmp_world):
    base, _ = cmp_world
    broken = _cmp_copy(base / "broken")
    target = broken / "clusters/shop/orders.yaml"
    target.write_text(target.read_text().replace("replicas: 3", "replicas: three", 1))
    failed = _generate(cmp_world, ".", {}, repo=broken)
    assert (failed.returncode, failed.stdout) == (3, b"")
    assert failed.stderr.decode().startswith("clusters/shop/orders.yaml:")


def test_generate_writes_nothing_into_the_package_or_the_repository(cmp_world):
    _, package = cmp_world
    before = sorted(p.relative_to(package) for p in package.rglob("*"))
    done = _generate(cmp_world, ".", {})
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(p.relative_to(package) for p in package.rglob("*")) == before
    assert not any(p.name == "__pycache__" for p in package.rglob("*"))


def test_the_package_folder_is_really_read_only(cmp_world):
    _, package = cmp_world
    assert not package.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
