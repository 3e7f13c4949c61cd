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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from everest_render.diagnostics import Diagnostic, Severity, candidates
from everest_render.load.documents import Document
from everest_render.model import (
    DEFAULT_SETTINGS,
    MANAGED_BY,
    RENDERER_LABELS,
    AppliedDefault,
    CatalogueVersion,
    ComponentType,
    DatabaseCluster,
    Definition,
    Expose,
    Provider,
    ResolvedBundle,
    ResolvedCluster,
    ResolvedComponent,
    ResolvedVersion,
    Topology,
)
from everest_render.resolve.catalog import Catalog, unique_by
from everest_render.resolve.gitops import resolve_controls
from everest_render.resolve.references import References, resolve_backup, resolve_monitoring
from everest_render.results import RepositorySettings
from everest_render.schema_check import compile_schema, schema_problems


@functools.lru_cache(maxsize=64)
def _config_validator(schema_text: str) -> Any:
    """A topology's configSchema, compiled once per distinct schema (not once per cluster)."""
    return compile_schema(json.loads(schema_text))


def _topology_validator(topology: Topology) -> Any:
    """`_config_validator` of the topology's configSchema, looked up once per topology (by its
    identity, which the entry holds): writing the schema out as the cache key was a tenth of
    resolving a cluster."""
    known = _TOPOLOGY_VALIDATORS.get(id(topology))
    if known is not None and known[0] is topology:
        return known[1]
    validator = _config_validator(json.dumps(topology.config_schema, sort_keys=True))
    if len(_TOPOLOGY_VALIDATORS) >= 64:  # a long-lived process (tests) resolves many repositories
        _TOPOLOGY_VALIDATORS.clear()
    _TOPOLOGY_VALIDATORS[id(topology)] = (topology, validator)
    return validator


_TOPOLOGY_VALIDATORS: dict[int, tuple[Topology, Any]] = {}


EXPOSE_ALIASES = {"internal": "ClusterIP", "external": "LoadBalancer"}
INSTANCE_FIELDS = ("replicas", "resources", "storage", "config", "affinity")
# What a component's entry holds besides its settings (a set made once, not a tuple per key).
_NOT_SETTINGS = frozenset({*INSTANCE_FIELDS, "type", "expose"})


def resolve_clusters(
    clusters: Iterable[DatabaseCluster],
    catalog: Catalog,
    references: References | None = None,
    settings: RepositorySettings = DEFAULT_SETTINGS,
    known: Callable[[DatabaseCluster], ResolvedCluster | None] | None = None,
) -> tuple[list[ResolvedCluster], list[Diagnostic]]:
    """Resolve every cluster; a duplicate (same namespace/name) points at the second and names
    the first. ``known``: a cluster resolved before from the very same inputs, without a
    problem, which is taken as it is (the diff against a revision: today's side resolved it)."""
    references = references or References({}, {})
    resolved: list[ResolvedCluster] = []
    problems: list[Diagnostic] = []
    for cluster in unique_by(clusters, lambda c: c.ref, "DatabaseCluster", problems).values():
        before = known(cluster) if known is not None else None
        if before is not None:
            resolved.append(before)
            continue
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
    """One cluster, step by step; each step records its problems and defaults in ``found``."""
    found = _Findings(cluster.document)
    references = references or References({}, {})
    chosen = _provider_and_definition(cluster.spec, catalog, found)
    if chosen is None:
        return None, found.problems
    provider, definition = chosen
    _check_name(cluster, provider, found)
    labels = _labels(cluster, found)
    controls, control_problems = resolve_controls(cluster, settings.gitops)
    found.problems.extend(control_problems)
    topology = _topology(cluster.spec, definition, found)
    if topology is None:
        return None, found.problems
    config = _topology_config(cluster.spec, definition, topology, found)
    bundle = _bundle(cluster, definition, found)
    versions = _versions(cluster.spec, definition, _bundle_versions(cluster.spec, definition, bundle), found)
    components = _components(cluster.spec, definition, topology, provider, versions, found)
    backup = resolve_backup(found, cluster, components, provider, references)
    monitoring = resolve_monitoring(found, cluster, components, references)
    secrets_name, cr_version = _names(cluster, provider, found)
    if any(p.is_error for p in found.problems):
        return None, found.problems
    resolved = ResolvedCluster(
        cluster=cluster,
        provider=provider,
        definition=definition,
        topology=topology.name,
        topology_config=config,
        components=components,
        versions=versions,
        pinned=tuple(sorted(cluster.spec.get("components", {}).get("versions", {}))),
        secrets_name=secrets_name,
        paused=_flag(cluster.spec, "paused", found),
        allow_unsafe_configuration=_flag(cluster.spec, "allowUnsafeConfiguration", found),
        cr_version=cr_version,
        labels=labels,
        backup=backup,
        monitoring=monitoring,
        defaults=tuple(found.defaults),
        settings=settings,
        gitops=controls,
        bundle=bundle,
    )
    return resolved, found.problems


class _Findings:
    """What resolving one cluster records (a ``references.Reporter``): problems located in its
    document, and the defaults applied, in the order they were decided."""

    def __init__(self, document: Document) -> None:
        self.doc = document
        self.problems: list[Diagnostic] = []
        self.defaults: list[AppliedDefault] = []

    def missing(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.doc.missing(path, message))

    def error(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def warn(self, path: tuple[str | int, ...], message: str) -> None:
        d = self.doc.at(path, message)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def default(self, path: str, value: Any, origin: str) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            # One record for each (path, value, origin) a fleet's clusters are given: they
            # repeat from cluster to cluster, and a record is frozen, so all may share it.
            key = (path, kind, value, origin)  # the type too: True == 1, and the record says which
            applied = _APPLIED.get(key)
            if applied is None:
                if len(_APPLIED) >= 10_000:
                    _APPLIED.clear()
                applied = _APPLIED[key] = AppliedDefault(path, value, origin)
            self.defaults.append(applied)
        else:
            self.defaults.append(AppliedDefault(path, value, origin))
        return value


_APPLIED: dict[tuple[str, type, Any, str], AppliedDefault] = {}


# --- the steps, in the order resolve_cluster takes them ----------------------------------------


def _provider_and_definition(spec: Mapping[str, Any], catalog: Catalog, found: _Findings) -> tuple[Provider, Definition] | None:
    """The cluster's provider and its definition; None when either is unknown or broken."""
    provider = catalog.providers.get(spec["provider"])
    if provider is None and spec["provider"] in catalog.broken:
        return None  # the provider's own errors say what is wrong
    if provider is None or provider.definition not in catalog.definitions:
        if provider is None:
            wanted = spec["provider"]
            found.error(("spec", "provider"), f"unknown provider {wanted!r}; known: {candidates(catalog.providers, wanted)}")
        return None  # else reported on the provider: unknown or broken definition
    return provider, catalog.definitions[provider.definition]


def _check_name(cluster: DatabaseCluster, provider: Provider, found: _Findings) -> None:
    name = cluster.ref.name
    if len(name) > provider.max_name_length:
        found.error(
            ("metadata", "name"),
            f"provider {provider.name} allows names of at most {provider.max_name_length} characters; {name!r} has {len(name)}",
        )


def _labels(cluster: DatabaseCluster, found: _Findings) -> dict[str, str]:
    own = cluster.labels
    for key in own:
        if key in RENDERER_LABELS:
            found.error(("metadata", "labels", key), f"label {key!r} is set by the renderer; remove it", key=True)
    return {RENDERER_LABELS[0]: MANAGED_BY, RENDERER_LABELS[1]: cluster.ref.name, **own}


def _topology(spec: Mapping[str, Any], definition: Definition, found: _Findings) -> Topology | None:
    requested = spec.get("topology", {}).get("type")
    if requested is not None:
        topology = definition.topologies.get(requested)
        if topology is None:
            known = candidates(definition.topologies, requested)
            found.error(("spec", "topology", "type"), f"unknown topology {requested!r}; known: {known}")
        return topology
    marked = [t for t in definition.topologies.values() if t.default]
    if len(definition.topologies) == 1 or marked:
        topology = marked[0] if marked else next(iter(definition.topologies.values()))
        found.default("spec.topology.type", topology.name, f"definition {definition.name}")
        return topology
    found.missing(
        ("spec",) if "topology" not in spec else ("spec", "topology"),
        f"spec.topology.type is required: definition {definition.name} has several topologies: {candidates(definition.topologies)}",
    )
    return None


def _topology_config(spec: Mapping[str, Any], definition: Definition, topology: Topology, found: _Findings) -> dict[str, Any]:
    given = dict(spec.get("topology", {}).get("config", {}))
    schema = topology.config_schema
    base = ("spec", "topology", "config")
    if schema is None:
        if given:
            found.error(base, f"topology {topology.name} takes no config")
        return given
    for problem in schema_problems(_topology_validator(topology), given):
        path = (*base, *problem.path)
        if problem.missing:
            found.missing(path, problem.message)
        else:
            found.error(path, problem.message, key=problem.at_key)
    for name, prop in schema.get("properties", {}).items():
        if name not in given and "default" in prop:
            origin = f"definition {definition.name} topology {topology.name} configSchema"
            given[name] = found.default(f"spec.topology.config.{name}", prop["default"], origin)
    return given


def _bundle(cluster: DatabaseCluster, definition: Definition, found: _Findings) -> ResolvedBundle | None:
    """The bundle spec.components.bundle names, else (an upstream Instance) the definition's
    default bundle, as upstream's PrepareForSync picks it; a DatabaseCluster naming none has none."""
    name = cluster.spec.get("components", {}).get("bundle")
    if name is not None:
        if definition.bundle(name) is None:
            known = candidates((b.name for b in definition.bundles), name)
            message = f"unknown version bundle {name!r} of definition {definition.name}; known: {known}"
            found.error(("spec", "components", "bundle"), message)
            return None
        return ResolvedBundle(name, "spec.components.bundle")
    if not cluster.default_bundle:
        return None
    default = definition.default_bundle
    if default is None:
        return None
    origin = f"definition {definition.name} default bundle"
    found.default("spec.components.bundle", default.name, origin)
    return ResolvedBundle(default.name, origin)


def _bundle_versions(
    spec: Mapping[str, Any], definition: Definition, resolved: ResolvedBundle | None
) -> dict[str, tuple[CatalogueVersion, str]]:
    """Per component type, the bundle's version and where it came from. A bundle version the
    component's type does not list (PXC: a HAProxy version for a proxy that runs ProxySQL) is
    skipped, so the type's catalogue default applies, as upstream's imageForBundledProxy falls back."""
    bundle = definition.bundle(resolved.name) if resolved is not None else None
    if bundle is None:
        return {}
    instances = spec.get("instances", {})
    chosen: dict[str, tuple[CatalogueVersion, str]] = {}
    for component, version in bundle.components.items():
        type_name = (instances.get(component) or {}).get("type", definition.components[component].type)
        entry = definition.component_types[type_name].find(version) if type_name in definition.component_types else None
        if entry is not None and type_name not in chosen:  # the definition check gives a type one version per bundle
            chosen[type_name] = (entry, f"bundle {bundle.name} ({component}: {version})")
    return chosen


def _versions(
    spec: Mapping[str, Any], definition: Definition, from_bundle: Mapping[str, tuple[CatalogueVersion, str]], found: _Findings
) -> dict[str, ResolvedVersion]:
    """Each component type's version: the one the cluster pins, else its bundle's, else the catalogue default."""
    pinned = spec.get("components", {}).get("versions", {})
    # Without a bundle, the versions and the defaults recorded are a function of the definition
    # and the versions pinned, the same for every cluster that pins the same: decided once
    # (by the definition's identity, which the entry holds), the defaults recorded again for
    # each. Only when nothing was wrong: a problem is located in the cluster's own file.
    key = _pins(definition, pinned) if not from_bundle else None
    if key is not None:
        known = _VERSIONS.get(key)
        if known is not None and known[0] is definition:
            found.defaults.extend(known[2])
            return dict(known[1])
    problems, defaults = len(found.problems), len(found.defaults)
    base = ("spec", "components", "versions")
    for type_name in pinned:
        if type_name not in definition.component_types:
            known_types = candidates(definition.component_types, type_name)
            found.error((*base, type_name), f"unknown component type {type_name!r}; known: {known_types}", key=True)
    versions: dict[str, ResolvedVersion] = {}
    for type_name, component_type in definition.component_types.items():
        if type_name in pinned:
            entry = _pinned_version(pinned[type_name]["version"], type_name, component_type, found)
        elif type_name in from_bundle:
            entry, origin = from_bundle[type_name]
            found.default(f"spec.components.versions.{type_name}.version", entry.version, origin)
        else:
            entry = _default_version(type_name, component_type, definition, found)
        if entry is not None:
            versions[type_name] = ResolvedVersion(type_name, entry.version, entry.image)
    if key is not None and len(found.problems) == problems:
        if len(_VERSIONS) >= 1_024:  # a long-lived process (tests) resolves many repositories
            _VERSIONS.clear()
        _VERSIONS[key] = (definition, dict(versions), tuple(found.defaults[defaults:]))
    return versions


def _pins(definition: Definition, pinned: Any) -> tuple[Any, ...] | None:
    """What `_versions` reads of the versions a cluster pins, with the definition's identity, as a
    key; None when a pin is not a mapping with a plain version (then it is read each time)."""
    if type(pinned) is not dict:
        return None
    pins: list[Any] = [id(definition)]
    for type_name, pin in pinned.items():
        version = pin.get("version") if type(pin) is dict else None
        if type(type_name) is not str or type(version) not in (str, int, float):
            return None
        pins += (type_name, type(version), version)
    return tuple(pins)


_VERSIONS: dict[tuple[Any, ...], tuple[Definition, dict[str, ResolvedVersion], tuple[AppliedDefault, ...]]] = {}


def _pinned_version(wanted: Any, type_name: str, component_type: ComponentType, found: _Findings) -> CatalogueVersion | None:
    entry = component_type.find(wanted)
    if entry is None:
        known = candidates((v.version for v in component_type.versions), str(wanted))
        found.error(("spec", "components", "versions", type_name, "version"), f"unknown {type_name} version {wanted}; known: {known}")
    return entry


def _default_version(type_name: str, component_type: ComponentType, definition: Definition, found: _Findings) -> CatalogueVersion | None:
    entry = component_type.default
    if entry is None:  # the definition check reports this
        return None
    origin = f"definition {definition.name} catalogue default"
    if entry.added_by_repository:
        origin += f", added by the repository ({entry.source})"
    found.default(f"spec.components.versions.{type_name}.version", entry.version, origin)
    return entry


def _components(
    spec: Mapping[str, Any],
    definition: Definition,
    topology: Topology,
    provider: Provider,
    versions: Mapping[str, ResolvedVersion],
    found: _Findings,
) -> dict[str, ResolvedComponent]:
    """The topology's components the cluster lists, each merged with the topology's defaults."""
    instances = spec.get("instances", {})
    _check_listed_components(spec, instances, topology, found)
    # The first candidate the cluster lists is the one clients connect to.
    allowed = provider.expose.get(topology.name, ())
    exposed = next((c for c in allowed if c in instances), allowed[0] if allowed else None)
    resolved: dict[str, ResolvedComponent] = {}
    for name, member in topology.components.items():
        if name not in instances:
            continue
        written = instances[name] or {}
        origin = f"definition {definition.name} topology {topology.name}"
        component = _component(name, written, member.defaults, origin, definition, versions, exposed, found)
        if component is not None:
            if component.replicas == 0 and not member.optional:
                message = f"component {name!r} is required by topology {topology.name}: it needs at least 1 replica"
                found.error(("spec", "instances", name, "replicas"), message)
            resolved[name] = component
    return _replicas_from(definition, resolved, found)


def _check_listed_components(spec: Mapping[str, Any], instances: Mapping[str, Any], topology: Topology, found: _Findings) -> None:
    """Every listed component is the topology's, and every required one is listed."""
    base = ("spec", "instances")
    for name in instances:
        if name not in topology.components:
            known = candidates(topology.components, name)
            found.error((*base, name), f"topology {topology.name} has no component {name!r}; known: {known}", key=True)
    for name, member in topology.components.items():
        if not member.optional and name not in instances:
            at = base if "instances" in spec else ("spec",)
            found.missing(at, f"component {name!r} is required by topology {topology.name}; list it under spec.instances")


def _replicas_from(definition: Definition, resolved: dict[str, ResolvedComponent], found: _Findings) -> dict[str, ResolvedComponent]:
    """Components with no replicas take those of the component their definition names
    (everest: a proxy without replicas gets the engine's count, applyHAProxyCfg & co.)."""
    for name, component in resolved.items():
        source = definition.components[name].replicas_from
        if component.replicas is not None or source is None or source not in resolved:
            continue
        count = resolved[source].replicas
        if count is not None:
            origin = f"definition {definition.name}: replicasFrom {source} (spec.instances.{source}.replicas)"
            resolved[name] = dataclasses.replace(component, replicas=found.default(f"spec.instances.{name}.replicas", count, origin))
    return resolved


def _component(
    name: str,
    written: Mapping[str, Any],
    defaults: Mapping[str, Any],
    origin: str,
    definition: Definition,
    versions: Mapping[str, ResolvedVersion],
    exposed: str | None,
    found: _Findings,
) -> ResolvedComponent | None:
    path = ("spec", "instances", name)
    kind = definition.components[name]
    type_name = written.get("type", kind.type)
    if type_name not in kind.allowed_types:
        allowed = candidates(kind.allowed_types, type_name)
        found.error((*path, "type"), f"component {name!r} cannot run {type_name!r}; allowed: {allowed}")
        return None
    values: dict[str, Any] = {}
    for field in INSTANCE_FIELDS:
        value = _merged_field(name, field, written, defaults, origin, found)
        if value is not None:
            values[field] = value
    resources = values.get("resources")
    if resources is not None and {"cpu", "memory"} & resources.keys() and {"requests", "limits"} & resources.keys():
        found.error((*path, "resources"), "use either the shorthand {cpu, memory} or {requests, limits}, not both")
    expose = _expose(name, written, exposed, found)
    version = versions.get(type_name)
    if version is None:
        return None
    settings = {k: v for k, v in written.items() if k not in _NOT_SETTINGS}
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


def _merged_field(name: str, field: str, written: Mapping[str, Any], defaults: Mapping[str, Any], origin: str, found: _Findings) -> Any:
    """The written value, else the topology default; storage merges size and class separately."""
    mine, theirs = written.get(field), defaults.get(field)
    if field == "config" and mine == "":
        mine = None  # everest treats an empty config as none given (its appliers test config == "")
    if field == "storage" and (mine is not None or theirs is not None):
        merged = dict(mine or {})
        for key, value in (theirs or {}).items():
            if key not in merged:
                merged[key] = found.default(f"spec.instances.{name}.{field}.{key}", value, origin)
        return merged
    if mine is not None:
        return mine
    if theirs is not None:
        return found.default(f"spec.instances.{name}.{field}", theirs, origin)
    return None


def _expose(name: str, written: Mapping[str, Any], exposed: str | None, found: _Findings) -> Expose | None:
    path = ("spec", "instances", name, "expose")
    given = written.get("expose")
    if name != exposed:
        if given is not None:
            where = f"only {exposed!r} can be exposed in this topology" if exposed else "no component can be exposed in this topology"
            found.error(path, f"expose is not allowed on {name!r}: {where}", key=True)
        return None
    given = given or {}
    if "type" in given:
        kind = EXPOSE_ALIASES.get(given["type"], given["type"])
    else:
        kind = found.default(f"spec.instances.{name}.expose.type", "ClusterIP", "everest default")
    ranges = tuple(_cidr(path, i, r, found) for i, r in enumerate(given.get("sourceRanges", [])))
    annotations = dict(given.get("annotations", {}))
    if kind != "LoadBalancer":
        for key in ("sourceRanges", "annotations"):
            if given.get(key):
                found.warn((*path, key), f"{key} only apply to type LoadBalancer; ignored for {kind}")
        ranges, annotations = (), {}
    return Expose(kind, ranges, annotations)


def _cidr(path: tuple[str | int, ...], index: int, text: str, found: _Findings) -> str:
    known = _RANGES.get(text) if type(text) is str else None
    if known is not None:
        return known
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)  # validate only: a range is kept as written
            written = text
        else:
            address = ipaddress.ip_address(text)
            written = f"{text}/{address.max_prefixlen}"
    except ValueError:
        found.error((*path, "sourceRanges", index), f"{text!r} is not an IP address or CIDR range")
        return text
    if type(text) is str:
        if len(_RANGES) >= 10_000:
            _RANGES.clear()
        _RANGES[text] = written
    return written


# Each valid source range as written, and as kept: a fleet repeats a few (ipaddress parses in
# Python, a good part of resolving a cluster that is exposed).
_RANGES: dict[str, str] = {}


def _names(cluster: DatabaseCluster, provider: Provider, found: _Findings) -> tuple[str, str]:
    """The Secret name and the operator's CR version: as written, else their defaults."""
    secrets_name = cluster.spec.get("secretsName") or found.default(
        "spec.secretsName", f"everest-secrets-{cluster.ref.name}", "everest default everest-secrets-<name>"
    )
    cr_version = cluster.spec.get("crVersion") or found.default(
        "spec.crVersion", provider.operator_version, f"provider {provider.name} (operator {provider.operator_name})"
    )
    return secrets_name, cr_version


def _flag(spec: Mapping[str, Any], name: str, found: _Findings) -> bool:
    if name in spec:
        return bool(spec[name])
    return bool(found.default(f"spec.{name}", False, "API default"))
