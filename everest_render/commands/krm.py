"""A KRM function (kpt, kustomize `transformers:`): a ResourceList in, a ResourceList out.

The input items are the repository's inputs (DatabaseClusters, BackupStorages,
MonitoringConfigs, pass-through objects); providers are the built-ins. The output items are
exactly the objects `render --stdout` prints for the same inputs, in the same order; problems
become `results` (the function fails on errors, as the KRM specification asks).

Items lose their source lines on the way through kustomize or kpt: diagnostics name the
item's `config.kubernetes.io/path` (else `items[N]`) and lines in its canonical form.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml

from everest_render.diagnostics import Diagnostic, format_path
from everest_render.emit.yaml_text import dump_document, dump_documents
from everest_render.load.files import RepositoryFiles, SourceSet, read_builtins
from everest_render.load.text import SourceFile
from everest_render.pipeline import render_repository

PATH_ANNOTATIONS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")
ORCHESTRATOR_PREFIXES = ("config.kubernetes.io/", "internal.config.kubernetes.io/", "config.k8s.io/")


def run_function(stdin: str) -> tuple[str, bool]:
    """The output ResourceList for ``stdin``, and whether the function failed."""
    try:
        resource_list = yaml.load(stdin, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as error:
        return _output([], [_result("error", f"input is not YAML: {error}")]), True
    if not isinstance(resource_list, dict) or resource_list.get("kind") != "ResourceList":
        return _output([], [_result("error", "input is not a ResourceList")]), True
    sources = _sources(resource_list.get("items") or [])
    result = render_repository(RepositoryFiles(read_builtins(), SourceSet(sources, {}, False)))
    results = [_diagnostic_result(d) for d in result.diagnostics]
    if result.failed:
        return _output([], results), True
    items = [doc for doc in yaml.load_all(result.plan.stream(), Loader=yaml.CSafeLoader) if doc is not None]
    return _output(items, results), False


def _sources(items: list[Any]) -> list[SourceFile]:
    """One source file per item path, each holding its items with orchestrator annotations removed."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        annotations = (item.get("metadata") or {}).get("annotations") or {}
        path = next((annotations[a] for a in PATH_ANNOTATIONS if a in annotations), f"items[{index}]")
        grouped[_under_clusters(path)].append(_without_orchestrator_annotations(item))
    return [SourceFile(path, dump_documents(docs)) for path, docs in sorted(grouped.items())]


def _under_clusters(path: str) -> str:
    # Every item is an input of clusters/ (definitions and providers come built in).
    return path if path.startswith("clusters/") else f"clusters/{path}"


def _without_orchestrator_annotations(item: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(item.get("metadata") or {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if not k.startswith(ORCHESTRATOR_PREFIXES)}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {**item, "metadata": metadata}


def _diagnostic_result(diagnostic: Diagnostic) -> dict[str, Any]:
    result = _result("error" if diagnostic.is_error else "warning", diagnostic.message)
    result["file"] = {"path": diagnostic.file.removeprefix("clusters/")}
    if diagnostic.path:
        result["field"] = {"path": format_path(diagnostic.path)}
    return result


def _result(severity: str, message: str) -> dict[str, Any]:
    return {"severity": severity, "message": message}


def _output(items: list[Any], results: list[dict[str, Any]]) -> str:
    resource_list: dict[str, Any] = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}
    if results:
        resource_list["results"] = results
    return dump_document(resource_list)
