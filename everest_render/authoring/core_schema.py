"""Strict JSON Schemas for core Kubernetes kinds, which have no CRD (NetworkPolicy, PodDisruptionBudget).

The source is the Kubernetes OpenAPI definitions as the PyPI package kubernetes-validate ships them
(``kubernetes-json-schema/<version>-local-strict/_definitions.json``: objects already closed).
Development time only: `vendor_definitions` keeps just the definitions one kind needs (vendored
beside the extension with a note naming the package and version), and `strict_schema_from_definitions`
turns those into the compact schema the check stage reads, shaped like the CRD ones
(authoring/crd_schema.py): apiVersion and kind constant, the renderer's metadata, no status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from everest_render.authoring.crd_schema import _METADATA_SCHEMA

_DROPPED = ("description", "format", "x-kubernetes-group-version-kind", "$id", "$schema")
_PREFIX = "/api/_definitions.json#/$defs/"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(_PREFIX).removeprefix("#/$defs/")} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def vendor_definitions(definitions: Mapping[str, Any], root: str) -> dict[str, Any]:
    """The definitions ``root`` needs, transitively (descriptions kept: it is the vendored source)."""
    needed: dict[str, Any] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed[name] = definitions[name]
        pending.extend(_refs(definitions[name]) - needed.keys())
    return {"$defs": dict(sorted(needed.items()))}


def strict_schema_from_definitions(vendored: Mapping[str, Any], root: str, api_version: str, kind: str) -> dict[str, Any]:
    """The strict schema of whole ``kind`` objects from vendored definitions (``root``: its definition)."""
    defs = vendored["$defs"]

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items() if k not in _DROPPED and not k.startswith("x-kubernetes-")}
            if isinstance(out.get("$ref"), str):
                out["$ref"] = "#/$defs/" + out["$ref"].removeprefix(_PREFIX).removeprefix("#/$defs/")
            return out
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    schema = clean(defs[root])
    properties = schema.setdefault("properties", {})
    properties.pop("status", None)
    properties["apiVersion"] = {"const": api_version}
    properties["kind"] = {"const": kind}
    properties["metadata"] = _METADATA_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    schema["additionalProperties"] = False
    schema["type"] = "object"
    used = vendor_definitions(defs, root)["$defs"]
    used.pop(root)
    used.pop("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", None)
    # What ObjectMeta alone needed is not referenced any more: keep only what the schema reaches.
    reachable = {name: clean(defs[name]) for name in _reach(schema, used)}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "$defs": dict(sorted(reachable.items()))}


def _reach(schema: Any, defs: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = list(_refs(schema))
    while pending:
        name = pending.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        pending.extend(_refs(defs[name]))
    return seen


def definition_of(vendored: Mapping[str, Any], api_version: str, kind: str) -> str:
    """The name of the definition of ``api_version``/``kind`` (its x-kubernetes-group-version-kind)."""
    group, _, version = api_version.rpartition("/")
    for name, definition in vendored["$defs"].items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return str(name)
    raise KeyError(f"no definition of {api_version} {kind}")
