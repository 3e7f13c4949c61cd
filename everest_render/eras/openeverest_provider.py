"""Upstream OpenEverest ``core.openeverest.io/v1alpha1`` ``Provider`` -> the definition it means.

OpenEverest v2 merged the DatabaseClusterDefinition into its Provider: component types with
versions, components, topologies, bundles and the parameter schemas an Instance is checked
against. It has no rendering (upstream renders in Go), so it is read as a catalogue: parse
translates it into an ``everest.percona.com/v2alpha1`` DatabaseClusterDefinition document
named as the upstream Provider, plus the provider that renders it, which is the provider its
name resolves to through the providers' ``instanceAliases`` (an upstream chart's provider name
-> the built-in's). parse/inputs.py then adds that provider under the upstream name with this
catalogue: beside the aliased provider when the name is an alias, in place of it (API.md's
same-name rule) when it is the provider's own name.

Both API eras are read (reference notes §1, §2.1): era C (``customSpecSchema``,
``configSchema``, ``globalConfigSchema``) and era D (``parametersSchema.openAPIV3Schema`` at
component, topology and Provider level). The translation is data, as for the Instance:
`USED` says where each field goes, `REFUSED` what is refused and why, `IGNORED` what is read
and deliberately left (with why, for docs/api.md). What upstream does not describe but
rendering needs (topology defaults, ``allowedTypes``, ``replicasFrom``, the topology's config
schema in the renderer's parameter names) comes from the definition of the provider that
renders it; the upstream parameter schemas check an Instance's parameters, in upstream's
names, before its translation (eras/openeverest_instance.py).

Pure: a function of the document and the providers and definitions known.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath, Severity, candidates
from everest_render.eras.translation import Translation
from everest_render.load.documents import Document
from everest_render.model import Definition, InstanceSchemas, Provider
from everest_render.schema_check import Validator, compile_schema, schema_problems

API_VERSION = "core.openeverest.io/v1alpha1"
KIND = "Provider"
DEFINITION_API_VERSION = "everest.percona.com/v2alpha1"

# --- the translation as data ------------------------------------------------------------------

# Used: (upstream field, what it becomes). Paths with "*" stand for every key or item.
USED: tuple[tuple[str, str], ...] = (
    ("metadata.name", "the definition's and the provider's name"),
    ("spec.componentTypes.*.versions[*].{version, image}", "the catalogue"),
    (
        "spec.componentTypes.*.versions[*].default, .defaultVersion",
        "the type's default version: defaultVersion, else the first entry marked default (upstream's GetDefaultVersion)",
    ),
    ("spec.components.*.type", "the component and its type"),
    ("spec.topologies.*.components.*.optional", "the topology's components (topology names through instanceAliases.topologies)"),
    ("spec.versions[*]", "the version bundles (name, default, components)"),
    (
        "spec.components.*.customSpecSchema (C), .parametersSchema.openAPIV3Schema (D)",
        "checks an Instance's components.<name>.customSpec / .parameters first",
    ),
    (
        "spec.topologies.*.configSchema (C), .parametersSchema.openAPIV3Schema (D)",
        "checks an Instance's topology.config / .parameters first",
    ),
    ("spec.globalConfigSchema (C), spec.parametersSchema.openAPIV3Schema (D)", "checks an Instance's spec.global / spec.parameters first"),
)


def _present(value: Any) -> bool:
    return True


def _truthy(value: Any) -> bool:
    return bool(value)


# (field, message, refused when its value...), relative to spec, "*" for every key.
Refusal = tuple[ObjectPath, str, Callable[[Any], bool]]
REFUSED: tuple[Refusal, ...] = (
    (
        ("topologies", "*", "components", "*", "supportedFields"),
        "supportedFields (which Instance fields a component accepts) is not enforced here; remove it,"
        " or the renderer would accept what upstream refuses",
        _present,
    ),
    (
        ("secrets",),
        "spec.secrets (Secrets upstream creates from a form) has no equivalent: the renderer never writes a Secret; remove it",
        _truthy,
    ),
    (
        ("configMaps",),
        "spec.configMaps (ConfigMaps upstream creates from a form) has no equivalent; remove it",
        _truthy,
    ),
)
# Read and deliberately left, with why (docs/api.md lists them).
IGNORED: tuple[tuple[str, str], ...] = (
    ("metadata (but name), status", "cluster state"),
    ("spec.uiSchema", "the web UI's forms; the editor's schemas are `everest-render editor-schema`"),
    ("spec.componentTypes.*.versions[*].deprecated, .removedInVersion", "UI hints; a deprecated version still renders"),
    ("spec.release", "the provider chart's own version"),
)


@dataclass(frozen=True)
class ForeignDefinition:
    """What an upstream Provider means: a DatabaseClusterDefinition document, the provider
    that renders it, and the parameter schemas an Instance of it is checked against first."""

    document: Document
    renders_as: Provider
    schemas: InstanceSchemas


def translate_provider(
    document: Document, providers: Sequence[Provider], definitions: Sequence[Definition]
) -> tuple[ForeignDefinition | None, list[Diagnostic]]:
    """The definition ``document`` (an upstream Provider) means, and every problem found;
    None when its shape is wrong, no provider renders it, or a part cannot be rendered."""
    problems = [
        document.missing(p.path, p.message) if p.missing else document.at(p.path, p.message, key=p.at_key)
        for p in schema_problems(_validator(), document.data)
    ]
    if problems:
        return None, problems
    return _Translation(document, providers, definitions).run()


@functools.cache
def _validator() -> Validator:
    from everest_render.parse.inputs import input_validator

    return input_validator("OpenEverestProvider")


def upstream_schema(written: Mapping[str, Any], era_c: str) -> tuple[Mapping[str, Any] | None, ObjectPath]:
    """An upstream parameter schema (era D ``parametersSchema.openAPIV3Schema`` or era C's
    field), and where it is written relative to ``written``."""
    if "parametersSchema" in written:
        return written["parametersSchema"]["openAPIV3Schema"], ("parametersSchema", "openAPIV3Schema")
    return written.get(era_c), (era_c,)


class _Translation(Translation):
    def __init__(self, document: Document, providers: Sequence[Provider], definitions: Sequence[Definition]) -> None:
        super().__init__(document)
        self.providers = providers
        self.definitions = {d.name: d for d in definitions}

    def error(self, path: ObjectPath, message: str, *, key: bool = True) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def warn(self, path: ObjectPath, message: str) -> None:
        d = self.doc.at(path, message)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def run(self) -> tuple[ForeignDefinition | None, list[Diagnostic]]:
        spec = self.doc.data["spec"]
        name = self.doc.data["metadata"]["name"]
        renders_as = self._renderer(name)
        if renders_as is None:
            return None, self.problems
        base = self.definitions.get(renders_as.definition)
        if base is None:
            self.error(("metadata", "name"), f"provider {renders_as.name} that renders {name!r} has no definition in effect")
            return None, self.problems
        for path, message, when in REFUSED:
            for found, value in _matches(spec, path, ("spec",)):
                if when(value):
                    self.error(found, message)
        self.origins[()] = ()
        self.put(("apiVersion",), DEFINITION_API_VERSION, ("apiVersion",))
        self.put(("kind",), "DatabaseClusterDefinition", ("kind",))
        self.put(("metadata",), {"name": name}, ("metadata",))
        self.put(("metadata", "name"), name, ("metadata", "name"))
        self.put(("spec",), {}, ("spec",))
        self._component_types(spec["componentTypes"])
        self._components(spec, base, renders_as)
        self._topologies(spec, base, renders_as)
        if "versions" in spec:
            self.put(("spec", "versions"), [dict(bundle) for bundle in spec["versions"]], ("spec", "versions"))
        schemas = self._schemas(spec, renders_as)
        if any(p.is_error for p in self.problems):
            return None, self.problems
        return ForeignDefinition(self.translated(self.out), renders_as, schemas), self.problems

    def _renderer(self, name: str) -> Provider | None:
        """The provider ``name`` resolves to: its own name, else the one declaring it an alias
        (later providers' declarations winning, as for an Instance)."""
        by_name = {p.name: p for p in self.providers}
        if name in by_name:
            return by_name[name]
        aliased = {alias: p for p in self.providers for alias in p.instance_aliases.names}
        if name in aliased:
            return aliased[name]
        known = sorted({*by_name, *aliased})
        self.error(
            ("metadata", "name"),
            f"no provider renders upstream Provider {name!r}: name it as a provider or one of their instanceAliases.names;"
            f" known: {candidates(known, name)}",
            key=False,
        )
        return None

    def _component_types(self, written: Mapping[str, Any]) -> None:
        for type_name, entry in written.items():
            at = ("spec", "componentTypes", type_name)
            versions = entry["versions"]
            wanted = entry.get("defaultVersion")
            if wanted is not None and all(v["version"] != wanted for v in versions):
                known = candidates((v["version"] for v in versions), wanted)
                message = f"defaultVersion {wanted!r} is not one of the type's versions; known: {known}"
                self.error((*at, "defaultVersion"), message, key=False)
            if wanted is None:
                wanted = next((v["version"] for v in versions if v.get("default")), None)
            if wanted is None:
                message = f"component type {type_name!r} marks no version default: true (nor defaultVersion)"
                self.error((*at, "versions"), message, key=False)
            self.put(at, {"versions": []}, at)
            for index, version in enumerate(versions):
                entry_at = (*at, "versions", index)
                translated = {"version": version["version"], "image": version["image"], "default": version["version"] == wanted}
                self.put((*at, "versions", index), translated, entry_at)
                for key in translated:
                    self.origins[(*at, "versions", index, key)] = (*entry_at, key if key in version else "version")

    def _components(self, spec: Mapping[str, Any], base: Definition, renders_as: Provider) -> None:
        """Upstream's components; from the rendering definition, each one's allowedTypes and
        replicasFrom, and the components upstream runs without declaring (a type of its catalogue)."""
        types = spec["componentTypes"]
        self.put(("spec", "components"), {}, ("spec", "components"))
        for name, entry in spec["components"].items():
            at = ("spec", "components", name)
            if name not in base.components:
                known = candidates(base.components, name)
                self.error(at, f"provider {renders_as.name} renders no component {name!r}; known: {known}")
                continue
            known_component = base.components[name]
            component: dict[str, Any] = {"type": entry["type"]}
            allowed = [t for t in known_component.allowed_types if t in types]
            if entry["type"] not in allowed:
                allowed = [entry["type"], *allowed]
            if len(allowed) > 1:
                component["allowedTypes"] = allowed
            if known_component.replicas_from is not None and known_component.replicas_from in spec["components"]:
                component["replicasFrom"] = known_component.replicas_from
            self.put(at, component, at)
            self.origins[(*at, "type")] = (*at, "type")
        for name, known_component in base.components.items():
            if name not in spec["components"] and known_component.type in types:
                self.put(("spec", "components", name), {"type": known_component.type}, ("spec", "componentTypes", known_component.type))

    def _topologies(self, spec: Mapping[str, Any], base: Definition, renders_as: Provider) -> None:
        aliases = renders_as.instance_aliases.topologies
        declared = self.out["spec"]["components"]
        self.put(("spec", "topologies"), {}, ("spec", "topologies"))
        for written_name, entry in spec["topologies"].items():
            at = ("spec", "topologies", written_name)
            name = aliases.get(written_name, written_name)
            known_topology = base.topologies.get(name)
            if known_topology is None:
                known = candidates(base.topologies, name)
                self.error(at, f"provider {renders_as.name} renders no topology {name!r}; known: {known}")
                continue
            topology: dict[str, Any] = {"components": {}}
            if known_topology.default:
                topology["default"] = True
            if known_topology.config_schema is not None:
                # The renderer's parameter names; upstream's schema checks the Instance's own first.
                topology["configSchema"] = dict(known_topology.config_schema)
            self.put(("spec", "topologies", name), topology, at)
            members = dict((entry.get("components") or {}).items())
            for component, member in members.items():
                member_at = (*at, "components", component)
                if component not in spec["components"]:
                    known = candidates(spec["components"], component)
                    self.error(member_at, f"unknown component {component!r}; known: {known}")
                    continue
                if component not in declared:
                    continue  # reported at spec.components
                self._member(name, component, (member or {}).get("optional", False), known_topology, member_at)
            for component in declared:
                # Declared without a component by upstream: optional where the renderer has it.
                if component not in spec["components"] and component in known_topology.components:
                    self._member(name, component, True, known_topology, at)

    def _member(self, topology: str, component: str, optional: bool, known: Any, at: ObjectPath) -> None:
        member: dict[str, Any] = {"optional": bool(optional)}
        rendered = known.components.get(component)
        if rendered is not None and rendered.defaults:
            member["defaults"] = dict(rendered.defaults)
        self.put(("spec", "topologies", topology, "components", component), member, at)

    def _schemas(self, spec: Mapping[str, Any], renders_as: Provider) -> InstanceSchemas:
        """The upstream parameter schemas, each compiled once here (a schema that does not
        compile is an error at it, not a traceback when an Instance is checked)."""
        components: dict[str, Mapping[str, Any]] = {}
        topologies: dict[str, Mapping[str, Any]] = {}
        for name, entry in spec["components"].items():
            schema, where = upstream_schema(entry, "customSpecSchema")
            if schema is not None and self._compiles(schema, ("spec", "components", name, *where)):
                components[name] = schema
        for name, entry in spec["topologies"].items():
            schema, where = upstream_schema(entry, "configSchema")
            translated = renders_as.instance_aliases.topologies.get(name, name)
            if schema is not None and self._compiles(schema, ("spec", "topologies", name, *where)):
                topologies[translated] = schema
        instance, where = upstream_schema(spec, "globalConfigSchema")
        if instance is not None and not self._compiles(instance, ("spec", *where)):
            instance = None
        return InstanceSchemas(components, topologies, instance, self.doc.source.path)

    def _compiles(self, schema: Mapping[str, Any], at: ObjectPath) -> bool:
        try:
            compile_schema(dict(schema))
        except Exception as error:  # jsonschema-rs raises its own ValidationError or ValueError
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.error(at, f"not a valid JSON Schema: {first}", key=False)
            return False
        return True


def _matches(data: Any, path: ObjectPath, prefix: ObjectPath) -> list[tuple[ObjectPath, Any]]:
    """Every (path, value) that ``path`` (``*`` for any key) names in ``data``."""
    if not path:
        return [(prefix, data)]
    head, rest = path[0], path[1:]
    if not isinstance(data, dict):
        return []
    if head == "*":
        return [found for key, value in data.items() for found in _matches(value, rest, (*prefix, key))]
    if head in data:
        return _matches(data[head], rest, (*prefix, head))
    return []
