"""Stage 2, parse: documents -> typed model objects; shape errors are collected here.

Each input kind is checked against its JSON Schema (everest_render/schemas/), then turned
into a frozen model. Anything that is not an everest kind and sits under clusters/ is kept
as a pass-through object.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from everest_render.check.core import object_problems
from everest_render.diagnostics import Diagnostic, ObjectPath, candidates, format_path
from everest_render.eras import FOREIGN_APIS, FOREIGN_DEFINITIONS, DefinitionTranslator, Translator
from everest_render.load.documents import Document
from everest_render.load.files import DEFINITION_FILES, ProviderAssets
from everest_render.load.text import BUILTIN_PREFIX
from everest_render.model import (
    BackupStorage,
    Bundle,
    CatalogueVersion,
    ChangeMeaning,
    ComponentType,
    DatabaseCluster,
    Definition,
    DefinitionComponent,
    DerivedField,
    InstanceAliases,
    MonitoringConfig,
    ObjectRef,
    ObjectSchema,
    OperatorRelease,
    PassthroughObject,
    Provider,
    ProviderGitops,
    Topology,
    TopologyComponent,
)

# ParsedInputs is the model's (what the stages give); named here, where it is made.
from everest_render.results import ParsedInputs
from everest_render.schema_check import Validator, compile_schema, schema_problems

EVEREST_GROUP = "everest.percona.com/"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
INPUT_KINDS = ("DatabaseClusterDefinition", "Provider", "DatabaseCluster")
REFERENCED_KINDS = ("BackupStorage", "MonitoringConfig")
INPUT_API_VERSION = EVEREST_GROUP + "v2alpha1"
REFERENCED_API_VERSION = EVEREST_GROUP + "v1alpha1"
# Every (apiVersion, kind) the renderer reads as input; a near miss of one is an error, never
# a pass-through object (passing `DatabaseCLuster` through would drop, and so prune, a database).
INPUT_APIS = (
    *((INPUT_API_VERSION, kind) for kind in INPUT_KINDS),
    *((REFERENCED_API_VERSION, kind) for kind in REFERENCED_KINDS),
    *FOREIGN_APIS,
    *FOREIGN_DEFINITIONS,
)
NEAR = 0.85  # difflib ratio: one or two letters off, a case slip, a missing version suffix
# Kinds without a namespace (docs/api.md): a pass-through object of these needs none, and goes
# to out/_cluster/. Every other kind must name its namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "PersistentVolume",
        "IngressClass",
        "RuntimeClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "APIService",
        "CSIDriver",
        "VolumeSnapshotClass",
        "ClusterSecretStore",
        "ClusterExternalSecret",
        "ClusterIssuer",
        "ClusterPolicy",
    }
)
CLUSTER_SCOPED_FOLDER = "_cluster"  # "_" cannot start a namespace: no collision
# Where each kind may be written, by top-level folder (a provider folder's definition file
# holds its DatabaseClusterDefinition).
FOLDER_KINDS = {"definitions": "DatabaseClusterDefinition", "providers": "Provider"}


@dataclass
class _Collected:
    """What parsing has found so far; frozen into ParsedInputs once every document is read."""

    definitions: list[Definition] = field(default_factory=list)
    providers: list[Provider] = field(default_factory=list)
    clusters: list[tuple[int, DatabaseCluster]] = field(default_factory=list)  # by document position
    backup_storages: list[BackupStorage] = field(default_factory=list)
    monitoring_configs: list[MonitoringConfig] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    passthrough: list[PassthroughObject] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def freeze(self) -> ParsedInputs:
        return ParsedInputs(
            tuple(self.definitions),
            tuple(self.providers),
            tuple(cluster for _, cluster in sorted(self.clusters, key=lambda entry: entry[0])),
            tuple(self.backup_storages),
            tuple(self.monitoring_configs),
            frozenset(self.broken),
            tuple(self.passthrough),
            tuple(self.diagnostics),
        )


SCHEMAS_FOLDER = Path(__file__).resolve().parent.parent / "schemas"


@functools.cache
def input_validator(kind: str) -> Validator:
    """The compiled schema of one input kind (common definitions inlined)."""
    from everest_render import prepared_builtins

    prepared = prepared_builtins.input_schema(kind)  # as built below, at build time
    return compile_schema(prepared if prepared is not None else input_schema(kind))


def input_kinds() -> list[str]:
    """Every kind schemas/ holds an input schema for (what the prepare step builds)."""
    names = sorted(p.name for p in SCHEMAS_FOLDER.glob("*.yaml"))
    return [name.removesuffix(".yaml") for name in names if name != "common.yaml" and not name.endswith(".overlay.yaml")]


def input_schema(kind: str) -> dict[str, Any]:
    """One input kind's schema, from schemas/<kind>.yaml with schemas/common.yaml's definitions inlined."""
    common = yaml.load((SCHEMAS_FOLDER / "common.yaml").read_text(), Loader=yaml.CSafeLoader)
    schema = yaml.load((SCHEMAS_FOLDER / f"{kind}.yaml").read_text(), Loader=yaml.CSafeLoader)
    return _inline_common(schema, common["$defs"])


def _inline_common(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (v.replace("common.yaml#", "#") if k == "$ref" else rewrite(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return {**rewrite(schema), "$defs": rewrite(defs)}


def check_against_schema(document: Document, kind: str) -> tuple[list[Diagnostic], list[ObjectPath], list[ObjectPath] | None]:
    """Every schema problem of ``document``, the paths of its unknown fields, and the paths of
    the values it refuses (None when a required field is missing: nothing to leave out)."""
    problems = []
    unknown: list[ObjectPath] = []
    refused: list[ObjectPath] | None = []
    for problem in schema_problems(input_validator(kind), document.data):
        if problem.missing:
            problems.append(document.missing(problem.path, problem.message))
            refused = None
        else:
            problems.append(document.at(problem.path, problem.message, key=problem.at_key))
            if problem.at_key:
                unknown.append(problem.path)
            elif refused is not None:
                refused.append(problem.path)
    return problems, unknown, refused


def _salvaged(document: Document, unknown: list[ObjectPath], refused: list[ObjectPath] | None) -> Document | None:
    """The cluster without its unknown fields and refused values, if what is left is valid:
    resolving it reports the cluster's other problems too (an unknown provider beside a wrong
    type). The run fails on the schema errors already reported; nothing is written."""
    if refused is None:
        return None
    # A refused value inside another refused value goes with it.
    outer = [p for p in {*unknown, *refused} if not any(p[: len(q)] == q and p != q for q in {*unknown, *refused})]
    salvaged = Document(document.source, document.index, _without(document.data, outer), document.positions)
    return salvaged if not check_against_schema(salvaged, "DatabaseCluster")[0] else None


def _without(data: Any, paths: list[ObjectPath]) -> Any:
    """A copy of ``data`` with the fields at ``paths`` removed."""
    result = copy.deepcopy(data)
    for path in paths:
        parent = result
        for part in path[:-1]:
            parent = parent[part]
        parent.pop(path[-1], None)
    return result


def parse_documents(
    documents: list[Document],
    assets: Mapping[str, ProviderAssets],
    *,
    builtin: bool = False,
    providers: Sequence[Provider] = (),
    definitions: Sequence[Definition] = (),
) -> ParsedInputs:
    """Sort documents into kinds and parse each; ``assets`` holds provider folders by path.

    A document of a foreign input API (``eras.FOREIGN_APIS``) is translated once every
    provider is known, ``providers`` (parsed before: the built-ins) and this set's own, since
    providers declare the names that API may call them by; it keeps its place among the clusters.
    """
    collected = _Collected()
    foreign: list[tuple[int, Document, Translator]] = []
    catalogues: list[tuple[Document, DefinitionTranslator]] = []
    for position, document in enumerate(documents):
        _parse_document(position, document, assets, builtin, collected, foreign, catalogues)
    for document, translate_catalogue in catalogues:
        known_providers, known_definitions = (*providers, *collected.providers), (*definitions, *collected.definitions)
        _add_foreign_definition(document, translate_catalogue, known_providers, known_definitions, builtin, collected)
    known = (*providers, *collected.providers)
    known_definitions = (*definitions, *collected.definitions)
    config_maps = {
        (p.namespace, p.document.data["metadata"]["name"]): p.document
        for p in collected.passthrough
        if not p.encrypted and p.document.data.get("apiVersion") == "v1" and p.document.data.get("kind") == "ConfigMap"
    }
    for position, document, translate in foreign:
        translated, problems = translate(document, known, known_definitions, config_maps)
        collected.diagnostics.extend(problems)
        if translated is not None:
            _parse_document(position, translated, assets, builtin, collected, [], [], translated=True)
    return collected.freeze()


def _add_foreign_definition(
    document: Document,
    translate: DefinitionTranslator,
    providers: Sequence[Provider],
    definitions: Sequence[Definition],
    builtin: bool,
    out: _Collected,
) -> None:
    """A foreign catalogue (an upstream Provider) as the definition it means, and the provider
    that renders it under its name: the provider its name resolves to, with this catalogue."""
    meant, problems = translate(document, providers, definitions)
    out.diagnostics.extend(problems)
    if meant is None:
        _mark_broken(document, out)
        return
    schema_problems = check_against_schema(meant.document, "DatabaseClusterDefinition")[0]
    definition, definition_problems = (None, schema_problems) if schema_problems else _parse_definition(meant.document, builtin)
    out.diagnostics.extend(definition_problems)
    if definition is None:
        _mark_broken(document, out)
        return
    out.definitions.append(definition)
    renders_as = meant.renders_as
    aliases = renders_as.instance_aliases
    out.providers.append(
        dataclasses.replace(
            renders_as,
            name=definition.name,
            definition=definition.name,
            # Its own name first: an Instance naming it gets this catalogue, not the alias's target.
            instance_aliases=InstanceAliases((definition.name,), aliases.topologies, aliases.topology_parameters),
            expose={t: c for t, c in renders_as.expose.items() if t in definition.topologies},
            instance_schemas=meant.schemas,
            document=document,
            builtin=builtin,
        )
    )


def _parse_document(
    position: int,
    document: Document,
    assets: Mapping[str, ProviderAssets],
    builtin: bool,
    out: _Collected,
    foreign: list[tuple[int, Document, Translator]],
    catalogues: list[tuple[Document, DefinitionTranslator]],
    *,
    translated: bool = False,
) -> None:
    data = document.data
    folder = document.source.path.removeprefix(BUILTIN_PREFIX).split("/", 1)[0]
    if document.refused:
        _mark_broken(document, out)  # load reported why; what the placeholder lacks is noise
        return
    if not isinstance(data, dict) or not isinstance(data.get("apiVersion"), str) or not isinstance(data.get("kind"), str):
        out.diagnostics.append(document.at((), "a document must be a mapping with apiVersion and kind"))
        return
    api_version, kind = data["apiVersion"], data["kind"]
    expected = FOLDER_KINDS.get(folder)
    translate_catalogue = FOREIGN_DEFINITIONS.get((api_version, kind))
    if translate_catalogue is not None:
        # A catalogue, read where definitions are: definitions/, or a provider folder's files.
        if folder in FOLDER_KINDS:
            catalogues.append((document, translate_catalogue))
        else:
            message = f"an upstream {api_version} {kind} is a catalogue: put it under definitions/ (docs/api.md)"
            out.diagnostics.append(document.at(("kind",), message))
        return
    if folder == "providers" and document.source.path.rsplit("/", 1)[-1] in DEFINITION_FILES:
        if kind != "DatabaseClusterDefinition":
            message = f"a provider folder's definition file holds a DatabaseClusterDefinition, not {kind}"
            out.diagnostics.append(document.at(("kind",), message))
            return
    elif expected is not None and kind != expected:
        out.diagnostics.append(document.at(("kind",), f"{folder}/ holds {expected} objects, not {kind}"))
        return
    suggestion = near_miss(api_version, kind)
    if suggestion is not None:
        where = ("kind",) if suggestion[0] == api_version else ("apiVersion",)
        message = f"{api_version} {kind} is not an input kind; did you mean {suggestion[0]} {suggestion[1]}?"
        out.diagnostics.append(document.at(where, message))
        _mark_broken(document, out)
        return
    translate = FOREIGN_APIS.get((api_version, kind))
    if translate is not None:
        # Becomes the DatabaseCluster it means (after every provider is parsed), then takes that path.
        foreign.append((position, document, translate))
        return
    if kind in INPUT_KINDS and api_version == INPUT_API_VERSION:
        problems, unknown, refused = check_against_schema(document, kind)
        out.diagnostics.extend(problems)
        salvaged = _salvaged(document, unknown, refused) if problems and kind == "DatabaseCluster" else None
        if problems and salvaged is None:
            _mark_broken(document, out)
            return
        if kind == "DatabaseClusterDefinition":
            _add(out, _parse_definition(document, builtin), document)
        elif kind == "Provider":
            _add(out, _parse_provider(document, assets, builtin), document)
        else:
            out.clusters.append((position, _parse_cluster(salvaged or document, tuple(refused or ()), default_bundle=translated)))
        return
    if kind in REFERENCED_KINDS and api_version == REFERENCED_API_VERSION:
        problems = check_against_schema(document, kind)[0]
        if problems:
            out.diagnostics.extend(problems)
        elif kind == "BackupStorage":
            out.backup_storages.append(_parse_backup_storage(document))
        else:
            out.monitoring_configs.append(_parse_monitoring_config(document))
        return
    _parse_passthrough(document, out)


def near_miss(api_version: str, kind: str) -> tuple[str, str] | None:
    """The input (apiVersion, kind) that ``api_version``/``kind`` nearly spells, when it is
    not one: a kind off by a letter or a case, or an input kind in a group or version off by
    one (``everest.percona.com/v2alpha``, ``Everest.Percona.com/v2alpha1``)."""
    if (api_version, kind) in INPUT_APIS:
        return None
    import difflib  # only for a kind that is not an input's

    group = api_version.rsplit("/", 1)[0].lower() if "/" in api_version else ""

    def near(a: str, b: str) -> bool:
        return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= NEAR

    best: tuple[float, tuple[str, str]] | None = None
    for known_version, known_kind in INPUT_APIS:
        known_group = known_version.rsplit("/", 1)[0]
        same_group = near(group, known_group)
        kind_ratio = 1.0 if kind == known_kind else difflib.SequenceMatcher(None, kind.lower(), known_kind.lower()).ratio()
        # A foreign group's own kind of the same name (crossplane's Provider) is not a near miss;
        # a kind one letter off an input kind is, in any group (no other API spells it so).
        if (same_group and kind_ratio >= NEAR) or (kind != known_kind and kind_ratio >= NEAR and known_kind != "Provider"):
            score = kind_ratio + (1.0 if same_group else 0.0)
            if best is None or score > best[0]:
                best = (score, (known_version, known_kind))
    return best[1] if best else None


def _mark_broken(document: Document, out: _Collected) -> None:
    metadata = document.data.get("metadata") if isinstance(document.data, dict) else None
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        out.broken.add(metadata["name"])


def _add(out: _Collected, result: tuple[Definition | Provider | None, list[Diagnostic]], document: Document) -> None:
    item, problems = result
    out.diagnostics.extend(problems)
    if item is None:
        _mark_broken(document, out)
    if isinstance(item, Definition):
        out.definitions.append(item)
    elif isinstance(item, Provider):
        out.providers.append(item)


def _parse_definition(document: Document, builtin: bool) -> tuple[Definition | None, list[Diagnostic]]:
    spec = document.data["spec"]
    problems: list[Diagnostic] = []
    types = _component_types(document, spec["componentTypes"], ("spec", "componentTypes"), problems)
    releases: dict[str, Mapping[str, ComponentType]] = {}
    for release, entry in spec.get("releases", {}).items():
        base = ("spec", "releases", release, "componentTypes")
        for type_name in entry["componentTypes"]:
            if type_name not in spec["componentTypes"]:
                message = f"unknown component type {type_name!r}; known: {candidates(spec['componentTypes'], type_name)}"
                problems.append(document.at((*base, type_name), message, key=True))
        releases[release] = _component_types(document, entry["componentTypes"], base, problems)
    components: dict[str, DefinitionComponent] = {}
    for name, entry in spec["components"].items():
        allowed = tuple(entry.get("allowedTypes", [entry["type"]]))
        for index, type_name in enumerate((entry["type"], *allowed)):
            if type_name not in types:
                where = ("spec", "components", name, "type") if index == 0 else ("spec", "components", name, "allowedTypes", index - 1)
                problems.append(document.at(where, f"unknown component type {type_name!r}; known: {candidates(types, type_name)}"))
        if entry["type"] not in allowed:
            problems.append(
                document.at(("spec", "components", name, "allowedTypes"), f"allowedTypes must include the default type {entry['type']!r}")
            )
        source = entry.get("replicasFrom")
        if source is not None and (source == name or source not in spec["components"]):
            known = candidates(c for c in spec["components"] if c != name)
            where = ("spec", "components", name, "replicasFrom")
            problems.append(document.at(where, f"replicasFrom must name another component; known: {known}"))
        components[name] = DefinitionComponent(name, entry["type"], allowed, source)
    topologies: dict[str, Topology] = {}
    for topo_name, entry in spec["topologies"].items():
        members: dict[str, TopologyComponent] = {}
        for name, member in entry["components"].items():
            member = member or {}
            if name not in components:
                problems.append(
                    document.at(
                        ("spec", "topologies", topo_name, "components", name),
                        f"unknown component {name!r}; known: {candidates(components, name)}",
                        key=True,
                    )
                )
            members[name] = TopologyComponent(name, bool(member.get("optional")), member.get("defaults") or {})
        topologies[topo_name] = Topology(topo_name, bool(entry.get("default")), members, entry.get("configSchema"))
    if sum(t.default for t in topologies.values()) > 1:
        problems.append(document.at(("spec", "topologies"), "at most one topology may be marked default: true"))
    bundles = _bundles(document, spec.get("versions", []), ("spec", "versions"), types, components, problems)
    release_bundles = {
        release: _bundles(document, entry["versions"], (*at, "versions"), {**types, **releases[release]}, components, problems)
        for release, entry in spec.get("releases", {}).items()
        if "versions" in entry
        for at in [("spec", "releases", release)]
    }
    if problems:
        return None, problems
    name = document.data["metadata"]["name"]
    return Definition(name, types, components, topologies, document, builtin, releases, bundles, release_bundles), []


def _component_types(
    document: Document, written: Mapping[str, Any], base: ObjectPath, problems: list[Diagnostic]
) -> dict[str, ComponentType]:
    """A catalogue's component types (``spec.componentTypes``, or one release's): each marks
    exactly one version default and lists a version once."""
    types: dict[str, ComponentType] = {}
    for type_name, entry in written.items():
        versions = tuple(CatalogueVersion(v["version"], v["image"], bool(v.get("default")), v.get("source")) for v in entry["versions"])
        path = (*base, type_name)
        defaults = [v.version for v in versions if v.default]
        if len(defaults) != 1:
            problems.append(document.at((*path, "versions"), f"component type {type_name!r} must mark exactly one version default: true"))
        seen: set[str] = set()
        for index, version in enumerate(versions):
            if version.version in seen:
                problems.append(document.at((*path, "versions", index, "version"), f"version {version.version} is listed twice"))
            seen.add(version.version)
        types[type_name] = ComponentType(type_name, versions)
    return types


def _bundles(
    document: Document,
    written: list[dict[str, Any]],
    base: ObjectPath,
    types: Mapping[str, ComponentType],
    components: Mapping[str, DefinitionComponent],
    problems: list[Diagnostic],
) -> tuple[Bundle, ...]:
    """``spec.versions``, checked as upstream's ValidateProviderSpec checks a Provider: every
    bundle component exists and its version is in the catalogue of the component's type."""
    bundles: list[Bundle] = []
    seen: set[str] = set()
    for index, entry in enumerate(written):
        at = (*base, index)
        if entry["name"] in seen:
            problems.append(document.at((*at, "name"), f"bundle {entry['name']} is listed twice"))
        seen.add(entry["name"])
        for component, version in entry["components"].items():
            where = (*at, "components", component)
            if component not in components:
                known = candidates(components, component)
                problems.append(document.at(where, f"unknown component {component!r}; known: {known}", key=True))
                continue
            type_name = components[component].type
            if type_name in types and types[type_name].find(version) is None:
                known = candidates((v.version for v in types[type_name].versions), version)
                problems.append(document.at(where, f"unknown {type_name} version {version}; known: {known}"))
        by_type: dict[str, tuple[str, str]] = {}
        for component, version in entry["components"].items():
            if component not in components:
                continue
            type_name = components[component].type
            first = by_type.setdefault(type_name, (component, version))
            if first[1] != version:
                message = f"components {first[0]!r} and {component!r} both run {type_name}, which runs one version: {first[1]} or {version}"
                problems.append(document.at((*at, "components", component), message))
        bundles.append(Bundle(entry["name"], bool(entry.get("default")), dict(entry["components"]), entry.get("source")))
    if sum(b.default for b in bundles) > 1:
        problems.append(document.at(base, "at most one bundle may be marked default: true"))
    return tuple(bundles)


def _parse_provider(document: Document, assets: Mapping[str, ProviderAssets], builtin: bool) -> tuple[Provider | None, list[Diagnostic]]:
    spec = document.data["spec"]
    folder = document.source.path.rsplit("/", 1)[0]
    files = assets.get(folder, ProviderAssets({}, {}))
    problems: list[Diagnostic] = []
    unreadable = bool(files.unreadable & {*spec["templates"], *(entry["schema"] for entry in spec["objects"])})
    for index, template in enumerate(spec["templates"]):
        if template not in files.templates and template not in files.unreadable:
            problems.append(document.at(("spec", "templates", index), f"no template {template!r} in {folder}/"))
    objects = []
    for index, entry in enumerate(spec["objects"]):
        if entry["schema"] not in files.schemas and entry["schema"] not in files.unreadable:
            problems.append(document.at(("spec", "objects", index, "schema"), f"no schema {entry['schema']!r} in {folder}/"))
        objects.append(ObjectSchema(entry["apiVersion"], entry["kind"], entry["schema"]))
    operator = spec["operator"]
    releases = _operator_releases(document, operator, objects, files, folder, problems)
    unreadable = unreadable or bool(files.unreadable & {file for release in releases for file in release.schemas.values()})
    if problems or unreadable:
        return None, problems
    return (
        Provider(
            name=document.data["metadata"]["name"],
            definition=spec["databaseClusterDefinition"],
            operator_name=operator["name"],
            operator_version=operator["version"],
            templates=tuple(spec["templates"]),
            objects=tuple(objects),
            expose={t: (c,) if isinstance(c, str) else tuple(c) for t, c in spec.get("expose", {}).items()},
            max_name_length=spec.get("maxNameLength", 63),
            max_backup_storages=spec.get("maxBackupStorages"),
            secrets=tuple(spec.get("secrets", [])),
            checks=tuple(spec.get("checks", [])),
            kind_order=tuple(spec.get("kindOrder", [])),
            instance_aliases=_instance_aliases(spec.get("instanceAliases", {})),
            gitops=_provider_gitops(spec.get("gitops", {})),
            folder=folder,
            assets=files,
            document=document,
            builtin=builtin,
            releases=releases,
        ),
        [],
    )


def _operator_releases(
    document: Document,
    operator: Mapping[str, Any],
    objects: Sequence[ObjectSchema],
    files: ProviderAssets,
    folder: str,
    problems: list[Diagnostic],
) -> tuple[OperatorRelease, ...]:
    """The provider's own release (``spec.operator``, with ``spec.objects``' schemas) and each
    of ``spec.operator.releases``, which must name a schema for every kind of ``spec.objects``
    (each release is checked against its own CRDs) and no other kind."""
    own = OperatorRelease(operator["version"], {o.kind: o.schema_file for o in objects}, operator.get("crds", operator["version"]))
    releases = [own]
    kinds = [o.kind for o in objects]
    seen: dict[str, ObjectPath] = {own.version: ("spec", "operator", "version")}
    for index, entry in enumerate(operator.get("releases", [])):
        at: ObjectPath = ("spec", "operator", "releases", index)
        if entry["version"] in seen:
            message = f"operator release {entry['version']} is listed twice (first at {format_path(seen[entry['version']])})"
            problems.append(document.at((*at, "version"), message))
            continue
        seen[entry["version"]] = (*at, "version")
        for kind, schema in entry["schemas"].items():
            if kind not in kinds:
                message = f"{kind} is not a kind of spec.objects; known: {candidates(kinds, kind)}"
                problems.append(document.at((*at, "schemas", kind), message, key=True))
            elif schema not in files.schemas and schema not in files.unreadable:
                problems.append(document.at((*at, "schemas", kind), f"no schema {schema!r} in {folder}/"))
        missing = [kind for kind in kinds if kind not in entry["schemas"]]
        if missing:
            message = f"release {entry['version']} needs the schema of every kind it renders: add {', '.join(missing)}"
            problems.append(document.missing((*at, "schemas"), message))
        crds = entry.get("crds", entry["version"])
        releases.append(OperatorRelease(entry["version"], dict(entry["schemas"]), crds, bool(entry.get("preview"))))
    return tuple(releases)


def _instance_aliases(written: Mapping[str, Any]) -> InstanceAliases:
    return InstanceAliases(
        tuple(written.get("names", [])),
        dict(written.get("topologies", {})),
        {topology: dict(names) for topology, names in written.get("topologyParameters", {}).items()},
    )


def _provider_gitops(written: Mapping[str, Any]) -> ProviderGitops:
    changes = tuple(
        ChangeMeaning(kind, entry["path"], entry["meaning"], entry["what"])
        for kind, entries in written.get("changes", {}).items()
        for entry in entries
    )
    derived = tuple(
        DerivedField(kind, entry["path"], entry["from"], entry["what"], entry.get("classes"))
        for kind, entries in written.get("derived", {}).items()
        for entry in entries
    )
    return ProviderGitops(tuple(written.get("volumeFinalizers", [])), changes, derived)


def _parse_cluster(document: Document, refused: tuple[ObjectPath, ...] = (), *, default_bundle: bool = False) -> DatabaseCluster:
    metadata = document.data["metadata"]
    ref = ObjectRef(metadata["namespace"], metadata["name"])
    annotations = dict(metadata.get("annotations", {}))
    return DatabaseCluster(ref, dict(metadata.get("labels", {})), document.data["spec"], document, refused, annotations, default_bundle)


def _parse_backup_storage(document: Document) -> BackupStorage:
    metadata, spec = document.data["metadata"], document.data["spec"]
    return BackupStorage(
        ref=ObjectRef(metadata["namespace"], metadata["name"]),
        type=spec["type"],
        bucket=spec["bucket"],
        region=spec.get("region"),
        endpoint_url=spec.get("endpointURL"),
        verify_tls=spec.get("verifyTLS", True),
        force_path_style=spec.get("forcePathStyle", False),
        credentials_secret_name=spec["credentialsSecretName"],
        document=document,
    )


def _parse_monitoring_config(document: Document) -> MonitoringConfig:
    metadata, spec = document.data["metadata"], document.data["spec"]
    return MonitoringConfig(
        ref=ObjectRef(metadata["namespace"], metadata["name"]),
        url=spec["pmm"]["url"],
        image=spec["pmm"].get("image"),
        credentials_secret_name=spec["credentialsSecretName"],
        verify_tls=spec.get("verifyTLS", True),
        document=document,
    )


# What SOPS writes: a MAC over the whole file, and each encrypted value, in this form.
_SOPS_VALUE = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]")


def _sops_problems(document: Document) -> list[Diagnostic]:
    """A ``sops:`` marker is trusted (the file is copied byte for byte) only when it is one: a
    MAC as SOPS writes it and, in a Secret, every value encrypted."""
    data = document.data
    sops = data["sops"]
    if not isinstance(sops, dict) or not isinstance(sops.get("mac"), str) or not _SOPS_VALUE.fullmatch(sops["mac"]):
        return [document.at(("sops",), "a sops: marker without a valid MAC is not a SOPS-encrypted file (encrypt it with sops)")]
    problems = []
    if data.get("kind") == "Secret":
        for field in ("data", "stringData"):
            values = data.get(field)
            for key, value in (values.items() if isinstance(values, dict) else ()):
                if not isinstance(value, str) or not _SOPS_VALUE.fullmatch(value):
                    message = "a Secret value in clear in a SOPS file (check encrypted_regex and unencrypted_suffix)"
                    problems.append(document.at((field, key), message))
    return problems


def _parse_passthrough(document: Document, out: _Collected) -> None:
    data = document.data
    encrypted = "sops" in data
    if encrypted:
        problems = _sops_problems(document)
        if problems:
            out.diagnostics.extend(problems)
            return
    if isinstance(data.get("items"), list) and str(data["kind"]).endswith("List"):
        # Each object is checked and placed on its own; a list would carry Secrets and
        # unplaceable objects past every check.
        out.diagnostics.append(document.at(("kind",), f"a {data['kind']} is not passed through: write each item as its own document"))
        return
    if data["kind"] == "Secret" and data.get("apiVersion") == "v1" and not encrypted and ("data" in data or "stringData" in data):
        key = "data" if "data" in data else "stringData"
        out.diagnostics.append(
            document.at(
                (key,), "a Secret with data must not be committed in clear; use SOPS, a SealedSecret or an ExternalSecret", key=True
            )
        )
        return
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        out.diagnostics.append(document.at((), "an object passed through to out/ needs metadata with a name"))
        return
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        out.diagnostics.append(document.missing(("metadata",), "an object passed through to out/ needs metadata.name"))
        return
    kind = data["kind"]
    if kind in CLUSTER_SCOPED_KINDS:
        if "namespace" in metadata:
            out.diagnostics.append(document.at(("metadata", "namespace"), f"{kind} is cluster-scoped: it has no namespace", key=True))
            return
        if kind != "Namespace":
            core = [document.at(path, message) for path, message in object_problems(data, urls=False, encrypted=encrypted)]
            if core:
                out.diagnostics.extend(core)
                return
            out.passthrough.append(PassthroughObject(CLUSTER_SCOPED_FOLDER, document, encrypted))
            return
    namespace: Any = name if kind == "Namespace" else metadata.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        out.diagnostics.append(
            document.missing(
                ("metadata",),
                f"an object passed through to out/ needs metadata.namespace"
                f" ({kind} is namespaced; cluster-scoped kinds are listed in docs/api.md)",
            )
        )
        return
    if not _DNS_LABEL.fullmatch(namespace):
        # The namespace names a folder of out/: it must be a plain label, never a path.
        where = ("metadata", "name") if kind == "Namespace" else ("metadata", "namespace")
        out.diagnostics.append(document.at(where, f"{namespace!r} is not a valid namespace (RFC 1123 label)"))
        return
    found = object_problems(data, urls=False, encrypted=encrypted)
    core = [document.at(path, message) for path, message in found if path[:2] != ("metadata", "namespace")]
    if core:
        out.diagnostics.extend(core)
        return
    out.passthrough.append(PassthroughObject(namespace, document, encrypted))
