"""Stage 3, resolve: cluster x definition x provider -> ResolvedCluster, every default recorded.

Pure: no files, clock, environment or network. Everything a template needs is decided here
(topology, components, versions, images, defaults, expose normalisation), so templates
only map a ResolvedCluster onto the operator's fields.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from everest_render.catalog import Catalog, unique_by
from everest_render.cron import cron_problem
from everest_render.diagnostics import Diagnostic, Severity, candidates
from everest_render.model import (
    MANAGED_BY,
    RENDERER_LABELS,
    AppliedDefault,
    BackupStorage,
    DatabaseCluster,
    Definition,
    Expose,
    MonitoringConfig,
    ObjectRef,
    Provider,
    ResolvedBackup,
    ResolvedCluster,
    ResolvedComponent,
    ResolvedMonitoring,
    ResolvedPitr,
    ResolvedSchedule,
    ResolvedVersion,
    Topology,
)
from everest_render.schema_check import compile_schema, schema_problems


@functools.lru_cache(maxsize=64)
def _config_validator(schema_text: str) -> Any:
    """A topology's configSchema, compiled once per distinct schema (not once per cluster)."""
    return compile_schema(json.loads(schema_text))


EXPOSE_ALIASES = {"internal": "ClusterIP", "external": "LoadBalancer"}
INSTANCE_FIELDS = ("replicas", "resources", "storage", "config", "affinity")


@dataclass(frozen=True)
class References:
    """The objects clusters may reference, by namespace and name."""

    backup_storages: Mapping[ObjectRef, BackupStorage]
    monitoring_configs: Mapping[ObjectRef, MonitoringConfig]

    def kind_of(self, ref: ObjectRef) -> str | None:
        if ref in self.backup_storages:
            return "BackupStorage"
        if ref in self.monitoring_configs:
            return "MonitoringConfig"
        return None


def index_references(storages: Iterable[BackupStorage], configs: Iterable[MonitoringConfig]) -> tuple[References, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    storage_index = unique_by(storages, lambda s: s.ref, "BackupStorage", problems)
    config_index = unique_by(configs, lambda c: c.ref, "MonitoringConfig", problems)
    return References(storage_index, config_index), problems


def resolve_clusters(
    clusters: Iterable[DatabaseCluster], catalog: Catalog, references: References | None = None
) -> tuple[list[ResolvedCluster], list[Diagnostic]]:
    """Resolve every cluster; a duplicate (same namespace/name) points at the second and names the first."""
    references = references or References({}, {})
    resolved: list[ResolvedCluster] = []
    problems: list[Diagnostic] = []
    for cluster in unique_by(clusters, lambda c: c.ref, "DatabaseCluster", problems).values():
        result, found = resolve_cluster(cluster, catalog, references)
        problems.extend(found)
        if result is not None:
            resolved.append(result)
    return resolved, problems


def resolve_cluster(
    cluster: DatabaseCluster, catalog: Catalog, references: References | None = None
) -> tuple[ResolvedCluster | None, list[Diagnostic]]:
    return _Resolution(cluster, catalog, references or References({}, {})).run()


class _Resolution:
    """The working state of resolving one cluster: problems and defaults accumulate here."""

    def __init__(self, cluster: DatabaseCluster, catalog: Catalog, references: References) -> None:
        self.cluster = cluster
        self.catalog = catalog
        self.references = references
        self.spec = cluster.spec
        self.doc = cluster.document
        self.problems: list[Diagnostic] = []
        self.defaults: list[AppliedDefault] = []

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
            self.error(("spec", "provider"), f"unknown provider {self.spec['provider']!r}; known: {candidates(self.catalog.providers)}")
            return None, self.problems
        definition = self.catalog.definitions[provider.definition]
        self._check_name(provider)
        labels = self._labels()
        topology = self._topology(definition)
        if topology is None:
            return None, self.problems
        config = self._topology_config(definition, topology)
        versions = self._versions(definition)
        components = self._components(definition, topology, provider, versions)
        backup = self._backup(components, provider)
        monitoring = self._monitoring(components, versions, definition)
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
            secrets_name=secrets_name,
            paused=self._flag("paused"),
            allow_unsafe_configuration=self._flag("allowUnsafeConfiguration"),
            cr_version=cr_version,
            labels=labels,
            backup=backup,
            monitoring=monitoring,
            defaults=tuple(self.defaults),
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
                self.error(("spec", "topology", "type"), f"unknown topology {requested!r}; known: {candidates(definition.topologies)}")
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
                self.error(
                    (*base, type_name), f"unknown component type {type_name!r}; known: {candidates(definition.component_types)}", key=True
                )
        versions: dict[str, ResolvedVersion] = {}
        for type_name, component_type in definition.component_types.items():
            if type_name in pinned:
                wanted = pinned[type_name]["version"]
                entry = component_type.find(wanted)
                if entry is None:
                    known = candidates(v.version for v in component_type.versions)
                    self.error((*base, type_name, "version"), f"unknown {type_name} version {wanted}; known: {known}")
                    continue
            else:
                entry = component_type.default
                if entry is None:  # the definition check reports this
                    continue
                self.default(
                    f"spec.components.versions.{type_name}.version", entry.version, f"definition {definition.name} catalogue default"
                )
            versions[type_name] = ResolvedVersion(type_name, entry.version, entry.image)
        return versions

    def _components(
        self, definition: Definition, topology: Topology, provider: Provider, versions: Mapping[str, ResolvedVersion]
    ) -> dict[str, ResolvedComponent]:
        instances = self.spec.get("instances", {})
        base = ("spec", "instances")
        for name in instances:
            if name not in topology.components:
                self.error(
                    (*base, name), f"topology {topology.name} has no component {name!r}; known: {candidates(topology.components)}", key=True
                )
        for name, member in topology.components.items():
            if not member.optional and name not in instances:
                at = base if "instances" in self.spec else ("spec",)
                self.problems.append(
                    self.doc.missing(at, f"component {name!r} is required by topology {topology.name}; list it under spec.instances")
                )
        exposed = provider.expose.get(topology.name)
        resolved: dict[str, ResolvedComponent] = {}
        for name, member in topology.components.items():
            if name not in instances:
                continue
            written = instances[name] or {}
            origin = f"definition {definition.name} topology {topology.name}"
            component = self._component(name, written, member.defaults, origin, definition, versions, exposed)
            if component is not None:
                resolved[name] = component
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
            self.error((*path, "type"), f"component {name!r} cannot run {type_name!r}; allowed: {candidates(kind.allowed_types)}")
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

    # --- referenced objects ------------------------------------------------------------

    def _reference(self, path: tuple[str | int, ...], name: str, kind: str, index: Mapping[ObjectRef, Any]) -> Any:
        """The ``kind`` named ``name`` in the cluster's namespace, or an error at ``path``."""
        ref = ObjectRef(self.cluster.ref.namespace, name)
        if ref in index:
            return index[ref]
        other = self.references.kind_of(ref)
        if other is not None:
            self.error(path, f"{ref} is a {other}, not a {kind}")
        else:
            known = candidates(r.name for r in index if r.namespace == ref.namespace)
            self.error(path, f"no {kind} {name!r} in namespace {ref.namespace} (under clusters/); known: {known}")
        return None

    def _backup(self, components: Mapping[str, ResolvedComponent], provider: Provider) -> ResolvedBackup:
        written = self.spec.get("backup", {})
        base = ("spec", "backup")
        prefix = written.get("pathPrefix") or self.default(
            "spec.backup.pathPrefix", f"{self.cluster.ref.namespace}/{self.cluster.ref.name}", "API default <namespace>/<name>"
        )
        storages: dict[str, BackupStorage] = {}
        used_at: dict[str, tuple[str | int, ...]] = {}

        def use(path: tuple[str | int, ...], name: str, wanted: bool) -> None:
            storage = self._reference(path, name, "BackupStorage", self.references.backup_storages)
            if storage is not None and wanted and name not in storages:
                storages[name] = storage
                used_at[name] = path

        schedules: list[ResolvedSchedule] = []
        seen_names: dict[str, int] = {}
        for index, entry in enumerate(written.get("schedules", [])):
            path = (*base, "schedules", index)
            if entry["name"] in seen_names:
                self.error((*path, "name"), f"duplicate schedule name {entry['name']!r} (first at schedules[{seen_names[entry['name']]}])")
            seen_names.setdefault(entry["name"], index)
            problem = cron_problem(entry["schedule"])
            if problem:
                self.error((*path, "schedule"), problem)
            enabled = entry.get("enabled", True)
            use((*path, "backupStorage"), entry["backupStorage"], enabled)
            if enabled:  # disabled schedules are checked, not rendered
                schedules.append(ResolvedSchedule(entry["name"], entry["schedule"], entry.get("retentionCopies"), entry["backupStorage"]))
        pitr = None
        if "pitr" in written:
            entry = written["pitr"]
            storage = entry.get("backupStorage")
            if entry["enabled"] and storage is None:
                self.problems.append(self.doc.missing((*base, "pitr"), "PITR needs backupStorage: the storage its logs upload to"))
            if storage is not None:
                use((*base, "pitr", "backupStorage"), storage, entry["enabled"])
            pitr = ResolvedPitr(entry["enabled"], storage, entry.get("uploadIntervalSec"))
        if (schedules or (pitr and pitr.enabled)) and "backupAgent" not in components:
            self.error(base, "backup schedules and PITR need the backupAgent component: list it under spec.instances", key=True)
        limit = provider.max_backup_storages
        if limit is not None and len(storages) > limit:
            for name in list(storages)[limit:]:  # in order of use: the reference that went over
                self.error(
                    used_at[name],
                    f"provider {provider.name} allows {limit} backup storage(s) per cluster;"
                    f" this makes {len(storages)}: {candidates(storages)}",
                )
        return ResolvedBackup(prefix, dict(sorted(storages.items())), tuple(schedules), pitr)

    def _monitoring(
        self, components: Mapping[str, ResolvedComponent], versions: Mapping[str, ResolvedVersion], definition: Definition
    ) -> ResolvedMonitoring | None:
        component = components.get("monitoring")
        if component is None:
            return None
        path = ("spec", "instances", "monitoring")
        name = component.settings.get("monitoringConfig")
        if name is None:
            self.problems.append(
                self.doc.missing(path, "the monitoring component needs monitoringConfig: the MonitoringConfig to report to")
            )
            return None
        config = self._reference((*path, "monitoringConfig"), name, "MonitoringConfig", self.references.monitoring_configs)
        if config is None:
            return None
        pinned = component.type in self.spec.get("components", {}).get("versions", {})
        if pinned or config.image is None:
            image = component.image
        else:
            image = self.default("spec.instances.monitoring.image", config.image, f"MonitoringConfig {config.ref} pmm.image")
        return ResolvedMonitoring(config, image)
