"""`everest-render krm`: the KRM function prints the objects `render --stdout` prints, as a ResourceList."""

from __future__ import annotations

import subprocess
import sys

import yaml

from everest_render.commands.krm import run_function
from tests.conftest import PROJECT_ROOT, mongodb


def resource_list(*files: str, annotate: bool = True) -> str:
    items = []
    for path in files:
        for doc in yaml.safe_load_all((PROJECT_ROOT / path).read_text()):
            if annotate:
                doc["metadata"].setdefault("annotations", {})["config.kubernetes.io/path"] = path.removeprefix("clusters/")
            items.append(doc)
    return yaml.safe_dump({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items})


def test_items_are_exactly_the_objects_render_stdout_prints(repo):
    inputs = ["clusters/shop/orders.yaml", "clusters/shop/backup-storages.yaml", "clusters/shop/catalog.yaml"]
    for path in inputs:
        repo.write(path, (PROJECT_ROOT / path).read_text())
    output, failed = run_function(resource_list(*inputs))
    assert not failed
    assert yaml.safe_load(output)["items"] == repo.stream()


def test_orchestrator_annotations_do_not_reach_the_output():
    output, _ = run_function(resource_list("clusters/dev/sandbox.yaml"))
    (item,) = yaml.safe_load(output)["items"]
    assert "annotations" not in item["metadata"]


def test_problems_become_results_and_no_items():
    text = yaml.safe_dump({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList",
                           "items": [yaml.safe_load(mongodb(body="  instances:\n    engine: {replicas: -1}\n"))]})
    output, failed = run_function(text)
    assert failed
    data = yaml.safe_load(output)
    assert data["items"] == []
    assert data["results"] == [{"severity": "error", "message": "-1 is less than the minimum of 0",
                                "file": {"path": "items[0]"}, "field": {"path": "spec.instances.engine.replicas"}}]


def test_not_a_resource_list_is_an_error():
    output, failed = run_function("a: 1\n")
    assert failed
    assert yaml.safe_load(output)["results"] == [{"severity": "error", "message": "input is not a ResourceList"}]


def test_the_command_reads_stdin_and_exits_1_on_errors():
    ok = subprocess.run([sys.executable, "-m", "everest_render", "krm"], input=resource_list("clusters/dev/events.yaml",
                        "clusters/dev/monitoring.yaml"), capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert ok.returncode == 0, ok.stderr
    assert [i["kind"] for i in yaml.safe_load(ok.stdout)["items"]] == ["PerconaServerMongoDB"]
    bad = subprocess.run([sys.executable, "-m", "everest_render", "krm"], input="kind: Nope\n", capture_output=True, text=True)
    assert bad.returncode == 1
