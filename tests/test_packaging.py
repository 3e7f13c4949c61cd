"""The wheel ships the built-in definitions and providers (one copy: the top-level folders)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import PROJECT_ROOT


def test_the_wheel_carries_every_builtin_definition_provider_and_schema(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"everest_render/_builtin/{path.relative_to(PROJECT_ROOT).as_posix()}"
        for folder in ("definitions", "providers")
        for path in (PROJECT_ROOT / folder).rglob("*")
        if path.is_file()
    }
    assert expected and expected <= names
    assert "everest_render/schemas/DatabaseCluster.yaml" in names
    assert {"everest_render/schemas/Instance.json", "everest_render/schemas/Instance.overlay.yaml"} <= names
