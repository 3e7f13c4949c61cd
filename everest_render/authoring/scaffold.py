"""`everest-render provider new`: a provider folder that renders and passes its own cases.

The scaffold is the smallest provider the mechanism accepts for one native kind: a definition
with one topology and an ``engine`` component, a provider.yaml, one template, the kind's strict
schema (generated from the CRD when one is given), an example cluster and two case files. When
a CRD is given, the template's ``spec`` is the least object the schema accepts (its required
fields, each from its default, its first enum value or its type), with the engine's replicas
and image wired to a field whose name says so; the author replaces the rest. The case files'
expectations are what the scaffold renders, computed here, so they pass out of the box and
fail as soon as the author changes the output (which is the point: update them knowingly).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from everest_render.authoring.crd_schema import strict_schema_from_crd

NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
KIND = re.compile(r"^(?P<group>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)/(?P<version>v[0-9]+[a-z0-9]*)/(?P<kind>[A-Z][A-Za-z0-9]*)$")
# Fields of a kind's spec that obviously take the engine's replica count or image.
REPLICA_FIELDS = ("replicas", "instances", "size", "members")
IMAGE_FIELDS = ("image", "imageName")
_WIRED = "__everest_render_wired_{}__"


class ScaffoldError(Exception):
    """The request cannot give a working provider (bad name or kind, unusable CRD)."""


@dataclass(frozen=True)
class Request:
    name: str
    api_version: str  # group/version
    kind: str
    operator: str
    operator_version: str
    crd: dict[str, Any] | None
    crd_file_name: str | None
    crd_text: str | None  # vendored byte for byte when the file holds only that CRD


def parse_request(name: str, kind: str, crd_text: str | None, operator: str | None, operator_version: str) -> Request:
    if not NAME.match(name) or len(name) > 63:
        raise ScaffoldError(f"provider name {name!r} is not an RFC 1123 label (lower case letters, digits and '-', starting with a letter)")
    match = KIND.match(kind)
    if match is None:
        raise ScaffoldError(f"--kind {kind!r} is not GROUP/VERSION/KIND (e.g. hyperspike.io/v1/Valkey)")
    crd = None
    crd_file_name = None
    vendored = None
    if crd_text is not None:
        crd = _matching_crd(crd_text, match["group"], match["version"], match["kind"])
        crd_file_name = f"{crd['spec']['names']['plural']}.{crd['spec']['group']}.yaml"
        single = len([d for d in yaml.safe_load_all(crd_text) if d is not None]) == 1
        vendored = crd_text if single else yaml.safe_dump(crd, sort_keys=False, allow_unicode=True)
    return Request(
        name, f"{match['group']}/{match['version']}", match["kind"], operator or name, operator_version, crd, crd_file_name, vendored
    )


def _matching_crd(text: str, group: str, version: str, kind: str) -> dict[str, Any]:
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise ScaffoldError(f"--crd does not parse as YAML: {error}") from None
    for document in documents:
        spec = document.get("spec", {})
        if document.get("kind") == "CustomResourceDefinition" and spec.get("group") == group and spec.get("names", {}).get("kind") == kind:
            if not any(v.get("name") == version for v in spec.get("versions", [])):
                served = ", ".join(v.get("name", "?") for v in spec.get("versions", []))
                raise ScaffoldError(f"--crd defines {kind} in {group} without version {version}; it has: {served}")
            return document
    raise ScaffoldError(f"--crd holds no CustomResourceDefinition of {group} {kind}")


def scaffold(request: Request) -> dict[str, str]:
    """Every file of the new provider, by path relative to the repository root."""
    schema = _schema(request)
    spec_text = _spec_template(schema)
    folder = f"providers/{request.name}"
    engine_type = request.kind.lower()
    files = {
        f"{folder}/definition.yaml": _definition(request, engine_type),
        f"{folder}/provider.yaml": _provider(request),
        f"{folder}/{request.kind.lower()}.yaml.j2": _template(request, spec_text),
        f"{folder}/schemas/{request.kind}.json": json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n",
        f"{folder}/examples/cluster.yaml": _example_cluster(request),
        f"{folder}/README.md": _readme(request),
    }
    if request.crd_text is not None and request.crd_file_name is not None:
        files[f"{folder}/crds/{request.operator_version}/{request.crd_file_name}"] = request.crd_text
    files.update(_cases(files, request, engine_type))
    return files


# --- the schema and the template's spec --------------------------------------------------------


def _schema(request: Request) -> dict[str, Any]:
    if request.crd is not None:
        return strict_schema_from_crd(request.crd, request.api_version.split("/")[1])
    # No CRD yet: the envelope is checked strictly, the spec not at all until one is vendored.
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": request.api_version},
            "kind": {"const": request.kind},
            "metadata": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": {"type": "object"},
        },
    }


def _spec_template(schema: Mapping[str, Any]) -> str:
    spec_schema = schema.get("properties", {}).get("spec")
    if spec_schema is None:
        raise ScaffoldError("the CRD's schema has no spec")
    if schema.get("properties", {}).get("spec") == {"type": "object"}:
        spec: dict[str, Any] = {"replicas": _WIRED.format("replicas"), "image": _WIRED.format("image")}
    else:
        value = least_value(spec_schema)
        spec = value if isinstance(value, dict) else {}
        properties = spec_schema.get("properties", {})
        for wanted, fields in (("replicas", REPLICA_FIELDS), ("image", IMAGE_FIELDS)):
            wanted_type = "integer" if wanted == "replicas" else "string"
            for field in fields:
                if _types(properties.get(field, {})) & {wanted_type}:
                    spec[field] = _WIRED.format(wanted)
                    break
    text = yaml.safe_dump({"spec": spec}, sort_keys=True, default_flow_style=False, width=1000)
    for wired, expression in (("replicas", "{{ engine.replicas | tojson }}"), ("image", "{{ engine.image | tojson }}")):
        text = text.replace(f"'{_WIRED.format(wired)}'", expression).replace(_WIRED.format(wired), expression)
    return text


def least_value(schema: Mapping[str, Any]) -> Any:
    """The smallest value ``schema`` accepts, as far as a schema alone says: its default, its
    first enum value, else by type (required properties only, minItems items, minimum)."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    types = _types(schema)
    if "object" in types or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: least_value(properties.get(name, {})) for name in schema.get("required", [])}
    if "array" in types:
        return [least_value(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if "integer" in types or "number" in types:
        return schema.get("minimum", 1)
    if "boolean" in types:
        return False
    if schema.get("x-kubernetes-int-or-string"):
        return 1
    return "x" * max(schema.get("minLength", 1), 1) if "string" in types else "TODO"


def _types(schema: Mapping[str, Any]) -> set[str]:
    given = schema.get("type", [])
    return {given} if isinstance(given, str) else set(given)


# --- the files ---------------------------------------------------------------------------------


def _definition(request: Request, engine_type: str) -> str:
    return f"""# The catalogue of the {request.name} provider (scaffolded by `everest-render provider new`).
# A version is the image tag; its image is what templates get as components.engine.image.
# Replace the placeholder with the images the operator release supports, citing the source.
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseClusterDefinition
metadata:
  name: {request.name}
spec:
  componentTypes:
    {engine_type}:
      versions:
        - {{version: "1.0.0", image: "registry.example.com/{request.name}:1.0.0", default: true}}
  components:
    engine: {{type: {engine_type}}}
  topologies:
    standard:
      default: true
      components:
        engine:
          defaults:
            replicas: 1
"""


def _provider(request: Request) -> str:
    template = f"{request.kind.lower()}.yaml.j2"
    return f"""# The {request.name} provider (scaffolded by `everest-render provider new`): one {request.kind}
# per DatabaseCluster. docs/providers.md describes every field.
apiVersion: everest.percona.com/v2alpha1
kind: Provider
metadata:
  name: {request.name}
spec:
  databaseClusterDefinition: {request.name}
  # The operator release the provider is written for; its CRDs are vendored in this folder under
  # crds/{request.operator_version}/ and `everest-render schemas` generates schemas/ from them.
  operator:
    name: {request.operator}
    version: {json.dumps(request.operator_version)}
  templates:
    - {template}
  objects:
    - apiVersion: {request.api_version}
      kind: {request.kind}
      schema: schemas/{request.kind}.json
  kindOrder: [{request.kind}]
"""


def _template(request: Request, spec_text: str) -> str:
    return f"""{{#- The {request.kind} of one DatabaseCluster (scaffolded by `everest-render provider new`).
    The context (cluster, topology, components, versions, backup, ...) and the helpers are in
    docs/providers.md. Write every value through tojson; refuse what has no field with fail(). -#}}
{{% set engine = components.engine %}}
apiVersion: {request.api_version}
kind: {request.kind}
metadata:
  name: {{{{ cluster.name | tojson }}}}
{spec_text}"""


def _example_cluster(request: Request) -> str:
    return f"""# An example DatabaseCluster of the {request.name} provider: copy it under clusters/.
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata:
  name: example
  namespace: default
spec:
  provider: {request.name}
  instances:
    engine:
      replicas: 3
"""


def _readme(request: Request) -> str:
    crd_line = (
        f"- `crds/{request.operator_version}/{request.crd_file_name}` is the CRD you gave: record where it\n"
        "  comes from (repository, tag, commit) beside it.\n"
        if request.crd is not None
        else f"- No CRD was given, so `schemas/{request.kind}.json` checks only the envelope. Vendor the CRD under\n"
        f"  `crds/{request.operator_version}/` (in this folder) and run `everest-render schemas` for a strict schema.\n"
    )
    return f"""# The `{request.name}` provider

Scaffolded by `everest-render provider new`. It renders a `{request.api_version}` `{request.kind}`
per DatabaseCluster and passes its own cases (`everest-render provider test {request.name}`).
Next steps (docs/providers.md walks through each):

{crd_line}- `definition.yaml`: the catalogue (versions and images), components, topologies, defaults.
- `{request.kind.lower()}.yaml.j2`: map the context to the kind's fields; refuse what has none.
- `cases/`: one case per behaviour and refusal. Their expectations were computed from the
  scaffold: update them when you change the output, on purpose.
- Document each field's mapping in this README.
"""


def _cases(files: Mapping[str, str], request: Request, engine_type: str) -> dict[str, str]:
    """Two case files, their expectations what the scaffold renders now."""
    from everest_render.testing import Repo

    example = files[f"providers/{request.name}/examples/cluster.yaml"]
    pinned = f"  components:\n    versions:\n      {engine_type}: {{version: 0.0.1}}\n"
    wrong = example.replace("      replicas: 3\n", "      replicas: 3\n" + pinned)
    with tempfile.TemporaryDirectory(prefix="everest-scaffold-") as scratch:
        repo = Repo(Path(scratch))
        for path, text in files.items():
            if path.startswith("providers/"):
                repo.write(path, text)
        repo.write("clusters/example.yaml", example)
        result = repo.result()
        problems = [str(d) for d in result.diagnostics if d.is_error]
        if problems:
            raise ScaffoldError("the scaffold does not render its example cluster:\n" + "\n".join(problems))
        stream = result.plan.stream().decode()
        repo.write("clusters/example.yaml", wrong)
        refused = repo.errors()
    folder = f"providers/{request.name}/cases"
    return {
        f"{folder}/the-example-cluster-renders.yaml": _case("the example cluster renders", example, "stream", stream),
        f"{folder}/a-version-not-in-the-catalogue-is-refused.yaml": _case(
            "a version not in the catalogue is refused", wrong, "errors", refused
        ),
    }


def _case(title: str, cluster: str, key: str, expected: str | list[str]) -> str:
    document = {"case": title, "files": {"clusters/example.yaml": cluster}, key: expected}
    return yaml.dump(document, Dumper=_LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so a case file reads like the files it holds."""


def _literal(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_LiteralDumper.add_representer(str, _literal)
