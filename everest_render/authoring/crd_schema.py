"""Turn a Kubernetes CRD's openAPIV3Schema into a strict, compact JSON Schema.

The API server prunes unknown fields silently; a GitOps renderer must not rely on that,
so every object schema that lists its properties becomes closed
(``additionalProperties: false``) unless the CRD says it preserves unknown fields.
Descriptions and Kubernetes-only markers are dropped, which shrinks the PSMDB schema from
1.3 MB of YAML to a JSON file that loads in milliseconds.

Usage: ``everest-render schemas [--repo DIR] [--check]`` regenerates (or checks) every
provider's schemas from the CRDs vendored in its folder, ``providers/<name>/crds/<version>/``
(or, in repositories laid out before that, ``crds/<operator>/<version>/``); in code::

    schema = strict_schema_from_crd(crd_document, "v1")

CEL rules (``x-kubernetes-validations``) cannot be expressed in JSON Schema: they are stored
beside it, under ``cel_rules.RULES_KEY`` at the schema's root, with the location each is
declared at (everest_render/check/cel_rules.py checks them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from everest_render.check.cel_rules import RULES_KEY, rules_from_schema

# Keys of the OpenAPI subset that JSON Schema understands the same way.
_KEPT_KEYS = frozenset(
    {
        "type",
        "properties",
        "items",
        "required",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "uniqueItems",
        "multipleOf",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "additionalProperties",
    }
)

# Kubernetes validates metadata itself; the CRD only says `type: object`. These are the
# fields a rendered object may carry (no server-populated ones: uid, resourceVersion, ...).
_METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "namespace": {"type": "string", "minLength": 1, "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def strict_schema_from_crd(crd: dict[str, Any], version: str) -> dict[str, Any]:
    """The strict JSON Schema of one served version of ``crd``, for whole objects."""
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            root = entry["schema"]["openAPIV3Schema"]
            break
    else:
        raise ValueError(f"CRD {crd['metadata']['name']} has no version {version}")
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schema = _strict(root)
    properties = schema.setdefault("properties", {})
    properties.pop("status", None)  # rendered objects never carry status
    properties["apiVersion"] = {"const": f"{group}/{version}"}
    properties["kind"] = {"const": kind}
    properties["metadata"] = _METADATA_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    schema["additionalProperties"] = False
    rules = rules_from_schema(root)
    if rules:
        schema[RULES_KEY] = rules
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEPT_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _strict(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            out[key] = [_strict(sub) for sub in value]
        else:
            out[key] = value
    closes = out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
    if closes and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        # The CRD's own anyOf already says integer|string; keep it, drop the type if any.
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable"):
        # After closing: a nullable object is still closed when it is an object.
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


# --- a repository's providers and the CRDs vendored beside them ----------------------------


class MissingCrd(Exception):
    """No vendored CRD matches a provider's object."""


def crd_folder(root: Path, provider_folder: Path, operator: str, version: str) -> Path:
    """Where a provider's CRDs are vendored: in its own folder, ``crds/<version>/``, when that
    exists (an engine is one folder); else the repository's ``crds/<operator>/<version>/``,
    which repositories written before provider folders held CRDs still use."""
    own = provider_folder / "crds" / version
    return own if own.is_dir() else root / "crds" / operator / version


def find_crd(root: Path, folder: Path, api_version: str, kind: str) -> dict[str, Any]:
    """The CRD of ``api_version``/``kind`` in ``folder`` (named relative to ``root`` when missing)."""
    group = api_version.split("/")[0]
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        if isinstance(crd, dict) and crd.get("spec", {}).get("group") == group and crd["spec"]["names"]["kind"] == kind:
            return crd
    raise MissingCrd(f"no CRD for {api_version} {kind} under {folder.relative_to(root).as_posix()}/")


def expected_schemas(root: Path) -> Iterator[tuple[Path, str]]:
    """(schema file, its expected JSON text) for every ``spec.objects`` entry of every
    ``providers/*/provider.yaml`` under ``root``, generated from the provider's CRD folder."""
    for provider_file in sorted((root / "providers").glob("*/provider.yaml")):
        spec = yaml.load(provider_file.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)["spec"]
        operator = spec["operator"]
        # The provider's own release, then each other release it supports, from its own CRDs.
        releases = [
            (operator.get("crds", operator["version"]), {entry["kind"]: entry["schema"] for entry in spec["objects"]}),
            *((release.get("crds", release["version"]), release["schemas"]) for release in operator.get("releases", [])),
        ]
        for crds, schemas in releases:
            folder = crd_folder(root, provider_file.parent, operator["name"], crds)
            for entry in spec["objects"]:
                crd = find_crd(root, folder, entry["apiVersion"], entry["kind"])
                schema = strict_schema_from_crd(crd, entry["apiVersion"].split("/")[1])
                yield provider_file.parent / schemas[entry["kind"]], json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"
    for manifest in sorted((root / "extensions").glob("*/extension.yaml")):
        spec = yaml.load(manifest.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)["spec"]
        for entry in spec["objects"]:
            if "source" in entry:
                schema = extension_schema(manifest.parent / entry["source"], entry["apiVersion"], entry["kind"])
                yield manifest.parent / entry["schema"], json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


def extension_schema(source: Path, api_version: str, kind: str) -> dict[str, Any]:
    """An extension's schema from the file its manifest names as the ``source``: a vendored CRD
    (``*.yaml``), or vendored Kubernetes OpenAPI definitions (``*.definitions.json``, core kinds)."""
    if source.name.endswith(".definitions.json"):
        from everest_render.authoring.core_schema import definition_of, strict_schema_from_definitions

        vendored = json.loads(source.read_text(encoding="utf-8"))
        return strict_schema_from_definitions(vendored, definition_of(vendored, api_version, kind), api_version, kind)
    if not source.is_file():
        raise MissingCrd(f"no vendored CRD {source}")
    crd = yaml.load(source.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    group = api_version.split("/")[0]
    if crd.get("spec", {}).get("group") != group or crd["spec"]["names"]["kind"] != kind:
        raise MissingCrd(f"{source} is not the CRD of {api_version} {kind}")
    return strict_schema_from_crd(crd, api_version.split("/")[1])
