"""Stage 3, resolve: cluster x definition x provider -> ResolvedCluster, every default recorded.

Pure: no files, clock, environment or network. Everything a template needs is decided here
(topology, components, versions, images, defaults, expose normalisation), so templates
only map a ResolvedCluster onto the operator's fields.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

from everest_render.diagnostics import Diagnostic, Severity, candidates
from everest_render.model import (
    DEFAULT_SETTINGS,
    MANAGED_BY,
    RENDERER_LABELS,
    AppliedDefault,
    CatalogueVersion,
    DatabaseCluster,
    Definition,
    Expose,
    Provider,
    RepositorySettings,
    ResolvedBundle,
    ResolvedCluster,
    ResolvedComponent,
    ResolvedVersion,
    Topology,
)
from everest_render.resolve.catalog import Catalog, unique_by
from everest_render.resolve.gitops import resolve_controls
from everest_render.resolve.references import References, resolve_backup, resolve_monitoring
from everest_render.schema_check import compile_schema, schema_problems


@functools.lru_cache(maxsize=64)
def _config_validator(schema_text: str) -> Any:
    """A topology's configSchema, compiled once per distinct schema (not once per cluster)."""
    return compile_schema(json.loads(schema_text))


EXPOSE_ALIASES = {"internal": "ClusterIP", "external": "LoadBalancer"}
INSTANCE_FIELDS = ("replicas", "resources", "storage", "config", "affinity")


def resolve_clusters(
    clusters: Iterable[DatabaseCluster],
    catalog: Catalog,
    references: References | None = None,
    settings: RepositorySettings = DEFAULT_SETTINGS,
) -> tuple[list[ResolvedCluster], list[Diagnostic]]:
    """Resolve every cluster; a duplicate (same namespace/name) points at the second and names the first."""
    references = references or References({}, {})
    resolved: list[ResolvedCluster] = []
    problems: list[Diagnostic] = []
    for cluster in unique_by(clusters, lambda c: c.ref, "DatabaseCluster", problems).values():
        result, found = resolve_cluster(cluster, catalog, references, settings)
        problems.extend(d for d in found if not _beside_refused(d.path, cluster.refused))
        if result is not None:
            resolved.append(result)
    return resolved, problems


def _beside_refused(path: tuple[str | int, ...], refused: tuple[tuple[str | int, ...], ...]) -> bool:
    """Whether ``path`` is at, inside or around a value the schema refused: what resolve says
    there follows from the value being left out (a required component "missing"), not news."""
    return any(path[: len(r)] == r or r[: len(path)] == path for r in refused)


def resolve_cluster(
    cluster: DatabaseCluster, catalog: Catalog, references: References | None = None, settings: RepositorySettings = DEFAULT_SETTINGS
) -> tuple[ResolvedCluster | None, list[Diagnostic]]:
    return _Resolution(cluster, catalog, references or References({}, {}), settings).run()


class _Resolution:
    """The working state of resolving one cluster: problems and defaults accumulate here."""

    def __init__(self, cluster: DatabaseCluster, catalog: Catalog, references: References, settings: RepositorySettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.catalog = catalog
        self.references = references
        self.spec = cluster.spec
        self.doc = cluster.document
        self.problems: list[Diagnostic] = []
        self.defaults: list[AppliedDefault] = []
        self.bundle: ResolvedBundle | None = None

    def missing(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.doc.missing(path, message))

    def error(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def warn(self, path: tuple[str | int, ...], message: str) -> None:
        d = self.doc.at(path, message)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def default(self, path: str, value: Any, origin: str) -> Any:
        self.defaults.append(AppliedDefault(path, value, origin))
        return value

    def run(self) -> tuple[ResolvedCluster | None, list[Diagnostic]]:
        provider = self.catalog.providers.get(self.spec["provider"])
        if provider is None and self.spec["provider"] in self.catalog.broken:
            return None, self.problems  # the provider's own errors say what is wrong
        if provider is None or provider.definition not in self.catalog.definitions:
            if provider is not None:
                return None, self.problems  # reported on the provider: unknown or broken definition
            wanted = self.spec["provider"]
            self.error(("spec", "provider"), f"unknown provider {wanted!r}; known: {candidates(self.catalog.providers, wanted)}")
            return None, self.problems
        definition = self.catalog.definitions[provider.definition]
        self._check_name(provider)
        labels = self._labels()
        controls, control_problems = resolve_controls(self.cluster, self.settings.gitops)
        self.problems.extend(control_problems)
        topology = self._topology(definition)
        if topology is None:
            return None, self.problems
        config = self._topology_config(definition, topology)
        versions = self._versions(definition)
        components = self._components(definition, topology, provider, versions)
        backup = resolve_backup(self, self.cluster, components, provider, self.references)
        monitoring = resolve_monitoring(self, self.cluster, components, self.references)
        secrets_name = self.spec.get("secretsName") or self.default(
            "spec.secretsName", f"everest-secrets-{self.cluster.ref.name}", "everest default everest-secrets-<name>"
        )
        cr_version = self.spec.get("crVersion") or self.default(
            "spec.crVersion", provider.operator_version, f"provider {provider.name} (operator {provider.operator_name})"
        )
        if any(p.is_error for p in self.problems):
            return None, self.problems
        resolved = ResolvedCluster(
            cluster=self.cluster,
            provider=provider,
            definition=definition,
            topology=topology.name,
            topology_config=config,
            components=components,
            versions=versions,
            pinned=tuple(sorted(self.spec.get("components", {}).get("versions", {}))),
            secrets_name=secrets_name,
            paused=self._flag("paused"),
            allow_unsafe_configuration=self._flag("allowUnsafeConfiguration"),
            cr_version=cr_version,
            labels=labels,
            backup=backup,
            monitoring=monitoring,
            defaults=tuple(self.defaults),
            settings=self.settings,
            gitops=controls,
            bundle=self.bundle,
        )
        return resolved, self.problems

    def _flag(self, name: str) -> bool:
        if name in self.spec:
            return bool(self.spec[name])
        return bool(self.default(f"spec.{name}", False, "API default"))

    def _check_name(self, provider: Provider) -> None:
        name = self.cluster.ref.name
        if len(name) > provider.max_name_length:
            self.error(
                ("metadata", "name"),
                f"provider {provider.name} allows names of at most {provider.max_name_length} characters; {name!r} has {len(name)}",
            )

    def _labels(self) -> dict[str, str]:
        own = self.cluster.labels
        for key in own:
            if key in RENDERER_LABELS:
                self.error(("metadata", "labels", key), f"label {key!r} is set by the renderer; remove it", key=True)
        return {RENDERER_LABELS[0]: MANAGED_BY, RENDERER_LABELS[1]: self.cluster.ref.name, **own}

    def _topology(self, definition: Definition) -> Topology | None:
        requested = self.spec.get("topology", {}).get("type")
        if requested is not None:
            topology = definition.topologies.get(requested)
            if topology is None:
                known = candidates(definition.topologies, requested)
                self.error(("spec", "topology", "type"), f"unknown topology {requested!r}; known: {known}")
            return topology
        marked = [t for t in definition.topologies.values() if t.default]
        if len(definition.topologies) == 1 or marked:
            topology = marked[0] if marked else next(iter(definition.topologies.values()))
            self.default("spec.topology.type", topology.name, f"definition {definition.name}")
            return topology
        self.problems.append(
            self.doc.missing(
                ("spec",) if "topology" not in self.spec else ("spec", "topology"),
                f"spec.topology.type is required: definition {definition.name} has several topologies: {candidates(definition.topologies)}",
            )
        )
        return None

    def _topology_config(self, definition: Definition, topology: Topology) -> dict[str, Any]:
        given = dict(self.spec.get("topology", {}).get("config", {}))
        schema = topology.config_schema
        base = ("spec", "topology", "config")
        if schema is None:
            if given:
                self.error(base, f"topology {topology.name} takes no config")
            return given
        for problem in schema_problems(_config_validator(json.dumps(schema, sort_keys=True)), given):
            path = (*base, *problem.path)
            if problem.missing:
                self.problems.append(self.doc.missing(path, problem.message))
            else:
                self.error(path, problem.message, key=problem.at_key)
        for name, prop in schema.get("properties", {}).items():
            if name not in given and "default" in prop:
                given[name] = self.default(
                    f"spec.topology.config.{name}", prop["default"], f"definition {definition.name} topology {topology.name} configSchema"
                )
        return given

    def _versions(self, definition: Definition) -> dict[str, ResolvedVersion]:
        pinned = self.spec.get("components", {}).get("versions", {})
        base = ("spec", "components", "versions")
        for type_name in pinned:
            if type_name not in definition.component_types:
                known = candidates(definition.component_types, type_name)
                self.error((*base, type_name), f"unknown component type {type_name!r}; known: {known}", key=True)
        from_bundle = self._bundle_versions(definition)
        versions: dict[str, ResolvedVersion] = {}
        for type_name, component_type in definition.component_types.items():
            if type_name in pinned:
                wanted = pinned[type_name]["version"]
                entry = component_type.find(wanted)
                if entry is None:
                    known = candidates((v.version for v in component_type.versions), str(wanted))
                    self.error((*base, type_name, "version"), f"unknown {type_name} version {wanted}; known: {known}")
                    continue
            elif type_name in from_bundle:
                entry, origin = from_bundle[type_name]
                self.default(f"spec.components.versions.{type_name}.version", entry.version, origin)
            else:
                entry = component_type.default
                if entry is None:  # the definition check reports this
                    continue
                origin = f"definition {definition.name} catalogue default"
                if entry.added_by_repository:
                    origin += f", added by the repository ({entry.source})"
                self.default(f"spec.components.versions.{type_name}.version", entry.version, origin)
            versions[type_name] = ResolvedVersion(type_name, entry.version, entry.image)
        return versions

    def _bundle(self, definition: Definition) -> ResolvedBundle | None:
        """The bundle named by spec.components.bundle, else (an upstream Instance) the
        definition's default bundle, as upstream's PrepareForSync picks it."""
        name = self.spec.get("components", {}).get("bundle")
        if name is not None:
            if definition.bundle(name) is None:
                known = candidates((b.name for b in definition.bundles), name)
                message = f"unknown version bundle {name!r} of definition {definition.name}; known: {known}"
                self.error(("spec", "components", "bundle"), message)
                return None
            return ResolvedBundle(name, "spec.components.bundle")
        default = definition.default_bundle
        if not self.cluster.default_bundle or default is None:
            return None
        self.default("spec.components.bundle", default.name, f"definition {definition.name} default bundle")
        return ResolvedBundle(default.name, f"definition {definition.name} default bundle")

    def _bundle_versions(self, definition: Definition) -> dict[str, tuple[CatalogueVersion, str]]:
        """Per component type, the bundle's version and where it came from. A bundle version
        the component's type does not list (PXC: a HAProxy version for a proxy that runs
        ProxySQL) is skipped, so the type's catalogue default applies, as upstream's
        imageForBundledProxy falls back."""
        self.bundle = self._bundle(definition)
        if self.bundle is None:
            return {}
        bundle = definition.bundle(self.bundle.name)
        assert bundle is not None
        instances = self.spec.get("instances", {})
        found: dict[str, tuple[CatalogueVersion, str]] = {}
        for component, version in bundle.components.items():
            written = instances.get(component) or {}
            type_name = written.get("type", definition.components[component].type)
            entry = definition.component_types[type_name].find(version) if type_name in definition.component_types else None
            if entry is None:
                continue
            if type_name in found and found[type_name][0].version != version:
                continue  # the definition check refuses a bundle that gives one type two versions
            found[type_name] = (entry, f"bundle {bundle.name} ({component}: {version})")
        return found

    def _components(
        self, definition: Definition, topology: Topology, provider: Provider, versions: Mapping[str, ResolvedVersion]
    ) -> dict[str, ResolvedComponent]:
        instances = self.spec.get("instances", {})
        base = ("spec", "instances")
        for name in instances:
            if name not in topology.components:
                known = candidates(topology.components, name)
                self.error((*base, name), f"topology {topology.name} has no component {name!r}; known: {known}", key=True)
        for name, member in topology.components.items():
            if not member.optional and name not in instances:
                at = base if "instances" in self.spec else ("spec",)
                self.problems.append(
                    self.doc.missing(at, f"component {name!r} is required by topology {topology.name}; list it under spec.instances")
                )
        # The first candidate the cluster lists is the one clients connect to.
        allowed = provider.expose.get(topology.name, ())
        exposed = next((c for c in allowed if c in instances), allowed[0] if allowed else None)
        resolved: dict[str, ResolvedComponent] = {}
        for name, member in topology.components.items():
            if name not in instances:
                continue
            written = instances[name] or {}
            origin = f"definition {definition.name} topology {topology.name}"
            component = self._component(name, written, member.defaults, origin, definition, versions, exposed)
            if component is not None:
                if component.replicas == 0 and not member.optional:
                    message = f"component {name!r} is required by topology {topology.name}: it needs at least 1 replica"
                    self.error((*base, name, "replicas"), message)
                resolved[name] = component
        return self._replicas_from(definition, resolved)

    def _replicas_from(self, definition: Definition, resolved: dict[str, ResolvedComponent]) -> dict[str, ResolvedComponent]:
        """Components with no replicas take those of the component their definition names
        (everest: a proxy without replicas gets the engine's count, applyHAProxyCfg & co.)."""
        for name, component in resolved.items():
            source = definition.components[name].replicas_from
            if component.replicas is not None or source is None or source not in resolved:
                continue
            count = resolved[source].replicas
            if count is not None:
                origin = f"definition {definition.name}: replicasFrom {source} (spec.instances.{source}.replicas)"
                resolved[name] = dataclasses.replace(component, replicas=self.default(f"spec.instances.{name}.replicas", count, origin))
        return resolved

    def _component(
        self,
        name: str,
        written: Mapping[str, Any],
        defaults: Mapping[str, Any],
        origin: str,
        definition: Definition,
        versions: Mapping[str, ResolvedVersion],
        exposed: str | None,
    ) -> ResolvedComponent | None:
        path = ("spec", "instances", name)
        kind = definition.components[name]
        type_name = written.get("type", kind.type)
        if type_name not in kind.allowed_types:
            allowed = candidates(kind.allowed_types, type_name)
            self.error((*path, "type"), f"component {name!r} cannot run {type_name!r}; allowed: {allowed}")
            return None
        values: dict[str, Any] = {}
        for field in INSTANCE_FIELDS:
            value = self._merged_field(name, field, written, defaults, origin)
            if value is not None:
                values[field] = value
        resources = values.get("resources")
        if resources is not None and {"cpu", "memory"} & resources.keys() and {"requests", "limits"} & resources.keys():
            self.error((*path, "resources"), "use either the shorthand {cpu, memory} or {requests, limits}, not both")
        expose = self._expose(name, written, exposed)
        version = versions.get(type_name)
        if version is None:
            return None
        settings = {k: v for k, v in written.items() if k not in (*INSTANCE_FIELDS, "type", "expose")}
        return ResolvedComponent(
            name=name,
            type=type_name,
            version=version.version,
            image=version.image,
            replicas=values.get("replicas"),
            resources=resources,
            storage=values.get("storage"),
            config=values.get("config"),
            affinity=values.get("affinity"),
            expose=expose,
            settings=settings,
        )

    def _merged_field(self, name: str, field: str, written: Mapping[str, Any], defaults: Mapping[str, Any], origin: str) -> Any:
        """The written value, else the topology default; storage merges size and class separately."""
        mine, theirs = written.get(field), defaults.get(field)
        if field == "config" and mine == "":
            mine = None  # everest treats an empty config as none given (its appliers test config == "")
        label = f"spec.instances.{name}.{field}"
        if field == "storage" and (mine is not None or theirs is not None):
            merged = dict(mine or {})
            for key, value in (theirs or {}).items():
                if key not in merged:
                    merged[key] = self.default(f"{label}.{key}", value, origin)
            return merged
        if mine is not None:
            return mine
        if theirs is not None:
            return self.default(label, theirs, origin)
        return None

    def _expose(self, name: str, written: Mapping[str, Any], exposed: str | None) -> Expose | None:
        path = ("spec", "instances", name, "expose")
        given = written.get("expose")
        if name != exposed:
            if given is not None:
                where = f"only {exposed!r} can be exposed in this topology" if exposed else "no component can be exposed in this topology"
                self.error(path, f"expose is not allowed on {name!r}: {where}", key=True)
            return None
        given = given or {}
        if "type" in given:
            kind = EXPOSE_ALIASES.get(given["type"], given["type"])
        else:
            kind = self.default(f"spec.instances.{name}.expose.type", "ClusterIP", "everest default")
        ranges = tuple(self._cidr(path, i, r) for i, r in enumerate(given.get("sourceRanges", [])))
        annotations = dict(given.get("annotations", {}))
        if kind != "LoadBalancer":
            for key in ("sourceRanges", "annotations"):
                if given.get(key):
                    self.warn((*path, key), f"{key} only apply to type LoadBalancer; ignored for {kind}")
            ranges, annotations = (), {}
        return Expose(kind, ranges, annotations)

    def _cidr(self, path: tuple[str | int, ...], index: int, text: str) -> str:
        try:
            if "/" in text:
                ipaddress.ip_network(text, strict=False)  # validate only: a range is kept as written
                return text
            address = ipaddress.ip_address(text)
            return f"{text}/{address.max_prefixlen}"
        except ValueError:
            self.error((*path, "sourceRanges", index), f"{text!r} is not an IP address or CIDR range")
            return text
