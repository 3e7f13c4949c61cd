"""resolve, render, order and the Instance translator are pure: they import nothing that reads files, clocks or processes."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import PROJECT_ROOT

IMPURE = {"os", "pathlib", "time", "datetime", "random", "subprocess", "socket", "shutil", "tempfile", "glob"}
PURE_MODULES = [
    "resolve/cluster", "resolve/catalog", "resolve/references", "resolve/cron",
    "render/templates", "render/postprocess", "render/functions", "render/quantity",
    "emit/order", "emit/yaml_text", "model", "eras/openeverest_instance",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_stage_module_imports_nothing_impure(module):
    tree = ast.parse((PROJECT_ROOT / "everest_render" / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & IMPURE == set()


def test_templates_cannot_reach_the_environment(repo):
    # The sandbox has no env/clock/file helpers; a provider that tries fails with a located error.
    from tests.test_templates import write_toy_provider

    write_toy_provider(repo, "{{ cycler.__init__.__globals__.os.environ }}")
    repo.write("clusters/db.yaml", "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: db, namespace: ns}\n"
               "spec: {provider: toy, instances: {engine: {}}}\n")
    (error,) = repo.errors()
    assert error.startswith("providers/toy/configmap.yaml.j2:1:1: while rendering ns/db: SecurityError")


def test_the_render_path_loads_no_authoring_tool_and_no_command():
    # authoring/ (schema generators) and commands/ sit beside the pipeline, never under it.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from everest_render.pipeline import read_repository, render_repository\n"
        f"assert not render_repository(read_repository(__import__('pathlib').Path({str(PROJECT_ROOT)!r}))).failed\n"
        "print(sorted(m for m in sys.modules if m.startswith(('everest_render.authoring', 'everest_render.commands'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
