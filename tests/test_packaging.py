"""The wheel ships the built-in providers (one copy: the top-level folder), without their vendored CRDs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


def test_the_wheel_carries_every_builtin_definition_provider_and_schema(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {path.relative_to(PROJECT_ROOT).as_posix() for path in (PROJECT_ROOT / "providers").rglob("*") if path.is_file()}
    vendored_crds = {path for path in shipped if path.split("/")[2] == "crds"}
    expected = {f"everest_render/_builtin/{path}" for path in shipped - vendored_crds}
    assert expected and expected <= names
    # The vendored CRDs feed `make schemas` and the tests only: rendering reads the schemas made
    # from them, so the wheel stays small (the clean-venv test below renders without them).
    assert vendored_crds and not [n for n in names if "/crds/" in n]
    assert "everest_render/schemas/DatabaseCluster.yaml" in names
    assert {"everest_render/schemas/Instance.json", "everest_render/schemas/Instance.overlay.yaml"} <= names


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The sdist and wheel as a release builds them (python -m build, with the locked backend)."""
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(dist), str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dist


def test_the_release_files_pass_twine_check(release):
    files = sorted(str(p) for p in release.iterdir())
    assert sorted(Path(f).suffix for f in files) == [".gz", ".whl"]
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_holds_no_test_suite_and_no_caches(release):
    (wheel,) = release.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if n.split("/")[0] in (".venv", "out", "clusters", "benchmarks", "examples")]


def test_the_wheel_renders_outside_the_checkout_in_a_clean_venv_installed_from_the_lock(release, tmp_path):
    (wheel,) = release.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin/python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", "--quiet", "install", "--no-deps"]
    subprocess.run([*pip, "--require-hashes", "-r", str(PROJECT_ROOT / "requirements.lock")], check=True, capture_output=True)
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    # The built-ins as the wheel holds them have the digest `prepare` stores from the checkout's
    # (prepared_builtins.py): the install takes them as prepared, from its RECORD, unread.
    from everest_render.package_files import builtin_tree_digest

    show = "from everest_render.package_files import builtin_tree_digest as d; print(d().hex())"
    shown = subprocess.run([str(python), "-c", show], cwd=tmp_path, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert shown.stdout.strip() == builtin_tree_digest().hex()
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_ROOT / "clusters", repo / "clusters")
    done = subprocess.run(
        [str(venv / "bin/everest-render"), "render", "--stdout"], cwd=repo, capture_output=True, check=False, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == _render_here()


def _render_here() -> bytes:
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    result = CliRunner().invoke(main, ["render", "--stdout", "--repo", str(PROJECT_ROOT)])
    assert result.exit_code == 0
    return result.stdout_bytes


def test_a_wheel_built_after_prepare_ships_the_prepared_files_but_not_the_checkouts_stat_record(tmp_path):
    # As the Dockerfile builds: the files it copies, `prepare` run, then `pip wheel`. The stat
    # record names the build machine's paths and stats (a checkout's cache, package_files.py);
    # an installed wheel is vouched for by its RECORD instead.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", ".gitignore"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "_prepared", "crds")
    for folder in ("everest_render", "providers", "extensions"):
        shutil.copytree(PROJECT_ROOT / folder, source / folder, ignore=skip)
    prepared = source / "everest_render/_prepared"
    prepared.mkdir()
    (prepared / "templates.marshal").write_bytes(b"prepared")
    (prepared / "file-stats.marshal").write_bytes(b"stats of the build machine")
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = wheels.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "everest_render/_prepared/templates.marshal" in names
    assert "everest_render/_prepared/file-stats.marshal" not in names
