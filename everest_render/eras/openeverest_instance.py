"""Upstream OpenEverest ``core.openeverest.io/v1alpha1`` ``Instance`` -> the DatabaseCluster it means.

Runs in the parse stage, called by parse/inputs.py: an Instance under clusters/ is checked against its
schema (eras/schema.py), translated into an ``everest.percona.com/v2alpha1``
DatabaseCluster document, and then takes the DatabaseCluster path unchanged, so resolve,
render, check and emit never see an Instance.

Both upstream API eras are read (reference notes §1, §3): era C (``spec.provider``,
``topology.config``, ``components.<n>.config``/``customSpec``, ``spec.global``) and era D
(``spec.providerRef.name``, ``topology.parameters``, ``components.<n>.parameters``,
``components.<n>.service``, ``spec.parameters``).

The translation is data: `COMPONENT_MOVES` and `SCHEDULE_MOVES` say where each field goes,
the `*_REFUSALS` tables what has no equivalent; hooks do the rest (the provider and topology
names, versions per component type, the parameter bags, backups flattened per storage).
Everything lands in the translated document through one `put(target, value, source)`, which
records the source as the target's origin: the translated document's ``positions`` give every
path the line and column of the field it came from and ``positions.origins`` names that field,
derived from the moves themselves, so an error raised here or in any later stage points at the
Instance's own line and names the Instance's own path.

Versions: upstream pins a version per component, the DatabaseCluster per component *type*.
A component that pins ``version`` runs its ``type``, else the type its definition declares
for it (upstream looks the version up by the declared type too): the providers' definitions
are read for those declared types only, not the catalogue (built later), so the translation
stays a function of the document and what the providers declare. Components of one type must
pin one version (they run one image).

Pure: no files, clock or environment; the schema is package data, loaded once.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath, Severity, candidates, format_path
from everest_render.eras.schema import instance_validator
from everest_render.eras.translation import Translation
from everest_render.load.documents import Document
from everest_render.model import Definition, InstanceSchemas, Provider
from everest_render.schema_check import compile_schema, schema_problems

API_VERSION = "core.openeverest.io/v1alpha1"
KIND = "Instance"
CLUSTER_API_VERSION = "everest.percona.com/v2alpha1"


@dataclass(frozen=True)
class ProviderNames:
    """The names an Instance may use, as the providers declare them (``spec.instanceAliases``):
    provider aliases (earlier upstream eras and charts), and per provider its topology and
    topology parameter names. A name not listed passes through unchanged: it may name a
    repository's own provider, topology or parameter."""

    providers: Mapping[str, str]
    topologies: Mapping[str, Mapping[str, str]]
    parameters: Mapping[tuple[str, str], Mapping[str, str]]
    # Per provider, the parameter schemas of the upstream Provider that is its catalogue.
    schemas: Mapping[str, InstanceSchemas] = field(default_factory=dict)
    # Per provider, each component's declared type (its definition's ``components.<n>.type``):
    # the type a version pinned on a component without ``type`` belongs to, as upstream's
    # GetImageForVersion looks the version up by the component's declared type.
    component_types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def declared_by(cls, providers: Sequence[Provider], definitions: Sequence[Definition] = ()) -> ProviderNames:
        """Later providers' declarations win: a repository's provider over a built-in one (and
        a repository's definition over a built-in one of the same name)."""
        declared = {d.name: {c.name: c.type for c in d.components.values()} for d in definitions}
        component_types: dict[str, Mapping[str, str]] = {}
        names: dict[str, str] = {}
        topologies: dict[str, Mapping[str, str]] = {}
        parameters: dict[tuple[str, str], Mapping[str, str]] = {}
        schemas: dict[str, InstanceSchemas] = {}
        for provider in providers:
            if provider.instance_schemas is not None:
                schemas[provider.name] = provider.instance_schemas
            if provider.definition in declared:
                component_types[provider.name] = declared[provider.definition]
            aliases = provider.instance_aliases
            names.update(dict.fromkeys(aliases.names, provider.name))
            if aliases.topologies:
                topologies[provider.name] = aliases.topologies
            for topology, renamed in aliases.topology_parameters.items():
                parameters[(provider.name, topology)] = renamed
        return cls(names, topologies, parameters, schemas, component_types)


# --- the translation as data ------------------------------------------------------------------

# Component fields with an equivalent: (Instance field, DatabaseCluster instance field), relative to
# spec.components.<name> and spec.instances.<name>. A mapping listed alone moves as an empty
# mapping (present even when none of its fields is written); its fields follow by their own rows.
COMPONENT_MOVES: tuple[tuple[ObjectPath, ObjectPath], ...] = (
    (("type",), ("type",)),
    (("replicas",), ("replicas",)),
    (("affinity",), ("affinity",)),
    (("resources",), ("resources",)),  # without claims (refused below)
    (("storage",), ("storage",)),
    (("storage", "size"), ("storage", "size")),
    (("storage", "storageClass"), ("storage", "class")),
    (("service",), ("expose",)),
    (("service", "serviceType"), ("expose", "type")),
    (("service", "annotations"), ("expose", "annotations")),
    (("service", "loadBalancerService", "sourceRanges"), ("expose", "sourceRanges")),
)
CONTAINERS = frozenset({("storage",), ("service",)})

# A schedule of a backup storage -> one of the cluster's schedules (enabled is computed).
SCHEDULE_MOVES: tuple[tuple[str, str], ...] = (("name", "name"), ("cron", "schedule"), ("retentionCopies", "retentionCopies"))


def _present(value: Any) -> bool:
    return True


def _truthy(value: Any) -> bool:
    return bool(value)


# (field, message, refused when its value..., error at the key rather than the value)
Refusal = tuple[ObjectPath, str, Callable[[Any], bool], bool]

INSTANCE_REFUSALS: tuple[Refusal, ...] = (
    (("global",), "spec.global (instance-wide provider parameters) has no equivalent; remove it", _truthy, True),
    (("parameters",), "spec.parameters (instance-wide provider parameters) has no equivalent; remove it", _truthy, True),
    (("dataSource",), "dataSource is not supported: a rendered cluster is not seeded from a backup; restore it separately", _present, True),
    (
        ("deletionPolicy",),
        "deletionPolicy Orphan cannot be honoured: removing a cluster from git removes its objects (Cascade)",
        lambda value: value == "Orphan",
        False,
    ),
    (
        ("maintenance",),
        "maintenance is not supported: operator upgrades follow the provider's version in git, not approvals in the cluster",
        _present,
        True,
    ),
)
COMPONENT_REFUSALS: tuple[Refusal, ...] = (
    (("image",), "image overrides are not supported: the image is the catalogue's for the component's version", _present, True),
    (
        ("config", "secretRef"),
        "config.secretRef refers to a Secret, whose values the renderer never reads: inline the text as"
        " parameters.configuration, or put it in a ConfigMap under clusters/ and name it in config.configMapRef",
        _present,
        True,
    ),
    (("resources", "claims"), "resource claims (dynamic resource allocation) are not supported; remove claims", _present, True),
    *(
        (
            ("schedulingPolicy", field),
            f"schedulingPolicy.{field} has no equivalent: a rendered component is placed by affinity only"
            " (schedulingPolicy.affinity, or affinity); express it as node or pod affinity",
            _truthy,
            True,
        )
        for field in ("nodeSelector", "tolerations", "topologySpreadConstraints", "schedulerName")
    ),
)


def _settings_refusals(what: str) -> tuple[Refusal, ...]:
    message = "{what} {bag} (the backup class's options) has no equivalent; remove it"
    return tuple(((bag,), message.format(what=what, bag=bag), _truthy, True) for bag in ("config", "parameters"))


SCHEDULE_REFUSALS = _settings_refusals("schedule")
PITR_REFUSALS = _settings_refusals("PITR")

# Component parameters that have an equivalent: the engine configuration text on any
# component, and the MonitoringConfig on the monitoring component (era C writes it in
# customSpec, era D in parameters). Every other parameter is refused.
CONFIGURATION = "configuration"
MONITORING = ("monitoring", "monitoringConfigName")
BACKUP_AGENT = "backupAgent"
# What the API server and controllers write into an Instance's metadata: a live Instance
# exported with `kubectl get -o yaml` carries it. It never reaches a rendered object (the
# translation copies only name, namespace, labels and annotations), so it is ignored, each field
# with a warning that names it, rather than refused: an export renders as the Instance it is.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
    "finalizers",
)
SPEC_ORDER = ("provider", "topology", "components", "instances", "secretsName", "backup")


def translate_instance(
    document: Document,
    providers: Sequence[Provider],
    definitions: Sequence[Definition] = (),
    config_maps: Mapping[tuple[str, str], Document] | None = None,
) -> tuple[Document | None, list[Diagnostic]]:
    """The DatabaseCluster document ``document`` (an Instance) means, and every problem found.

    None when the Instance's shape is wrong or it names no provider. A refused field is an
    error, is left out, and the rest is still translated, so later stages report their own
    problems in the same run (which fails on the errors; nothing is written).
    """
    problems, salvaged = _shape_checked(document)
    if salvaged is None:
        return None, problems
    translated, found = _Translation(salvaged, ProviderNames.declared_by(providers, definitions), config_maps or {}).run()
    return translated, [*problems, *found]


@functools.lru_cache(maxsize=256)
def _compiled_upstream(text: str) -> Any:
    return compile_schema(json.loads(text))


def _upstream_validator(schema: Mapping[str, Any]) -> Any:
    """An upstream parameter schema, compiled once per distinct schema (eras/openeverest_provider.py
    checked that it compiles)."""
    return _compiled_upstream(json.dumps(schema, sort_keys=True))


def _shape_checked(document: Document) -> tuple[list[Diagnostic], Document | None]:
    """The shape problems, and the Instance without the values they are at, so that its other
    checks still run (every problem at once). None when the shape leaves nothing to translate:
    a wrong metadata name or namespace, spec itself, or the provider reference."""
    problems: list[Diagnostic] = []
    dropped: list[ObjectPath] = []
    for problem in schema_problems(instance_validator(), document.data):
        if problem.missing:
            problems.append(document.missing(problem.path, problem.message))
        else:
            problems.append(document.at(problem.path, problem.message, key=problem.at_key))
        path = tuple(problem.path)
        if not _salvageable(path):
            return problems, None
        if not problem.missing:  # a missing field leaves nothing to drop: the translation skips its entry
            # a wrong list item drops its list, whose other items' positions would shift
            dropped.append(path[:-1] if isinstance(path[-1], int) else path)
    if not problems:
        return [], document
    return problems, dataclasses.replace(document, data=_without(document.data, dropped))


def _salvageable(path: ObjectPath) -> bool:
    if path[:1] == ("spec",):
        return len(path) >= 2 and path[1] not in ("providerRef", "provider")
    return path[:1] == ("metadata",) and len(path) >= 2 and path[1] not in ("name", "namespace")


def _without(data: Any, paths: Sequence[ObjectPath]) -> Any:
    result = copy.deepcopy(data)
    for path in sorted(set(paths), key=len, reverse=True):
        parent: Any = result
        for part in path[:-1]:
            found, parent = _get(parent, (part,)) if isinstance(parent, dict) else (False, None)
            if not found:
                break
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return result


def _get(data: Any, path: ObjectPath) -> tuple[bool, Any]:
    """Whether ``path`` is written in ``data``, and its value."""
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


# A schedule, the entry it came from and the field naming its storage; PITR's storage, its
# entry and the field naming the storage.
_Schedule = tuple[dict[str, Any], ObjectPath, ObjectPath]
_Pitr = tuple[str, ObjectPath, ObjectPath]


class _Translation(Translation):
    """The working state of translating one Instance: the output, its origins, the problems."""

    def __init__(self, document: Document, names: ProviderNames, config_maps: Mapping[tuple[str, str], Document]) -> None:
        super().__init__(document)
        self.names = names
        self.config_maps = config_maps
        self.upstream_refused: set[ObjectPath] = set()  # parameters an upstream schema refused
        self.schemas: InstanceSchemas | None = None

    def refuse(self, path: ObjectPath, message: str, *, key: bool = True) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def refuse_by(self, table: Sequence[Refusal], base: ObjectPath, written: Any) -> None:
        for path, message, when, key in table:
            found, value = _get(written, path)
            if found and when(value) and (*base, *path) not in self.upstream_refused:
                self.refuse((*base, *path), message, key=key)

    def check_upstream(self, schema: Mapping[str, Any] | None, at: ObjectPath, written: Any) -> None:
        """An upstream Provider's parameter schema checks the parameters at ``at`` first, so a
        wrong one gets upstream's message; what it refuses is not refused again."""
        if schema is None or not isinstance(written, dict):
            return
        for problem in schema_problems(_upstream_validator(schema), written):
            path = (*at, *problem.path)
            if problem.missing:
                self.problems.append(self.doc.missing(path, f"{problem.message} (the upstream Provider's schema)"))
            else:
                self.problems.append(self.doc.at(path, f"{problem.message} (the upstream Provider's schema)", key=problem.at_key))
            # The bag (whose refusal as a whole is then left to upstream's message) and the key.
            self.upstream_refused.update({at, (*at, *problem.path[:1])})

    def warn(self, path: ObjectPath, message: str) -> None:
        d = self.doc.at(path, message, key=True)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def run(self) -> tuple[Document | None, list[Diagnostic]]:
        data = self.doc.data
        spec = data["spec"]
        provider = self._provider(spec)
        if provider is None:
            # Nothing is translated without a provider, but what is refused anyway is said now.
            self.refuse_by(INSTANCE_REFUSALS, ("spec",), spec)
            return None, self.problems
        self.schemas = self.names.schemas.get(provider)
        if self.schemas is not None:
            for bag in ("global", "parameters"):
                if bag in spec:
                    self.check_upstream(self.schemas.instance, ("spec", bag), spec[bag])
        self.refuse_by(INSTANCE_REFUSALS, ("spec",), spec)
        self._topology(spec, provider)
        if "components" in spec:
            self.put(("spec", "instances"), {}, ("spec", "components"))
            self._components(spec["components"])
        if "userSecretRef" in spec and "name" in spec["userSecretRef"]:
            self.put(("spec", "secretsName"), spec["userSecretRef"]["name"], ("spec", "userSecretRef", "name"))
        if "version" in spec:
            # The bundle; without one, resolve applies the definition's default bundle (parse
            # marks a translated Instance so), as upstream's PrepareForSync does.
            self.put(("spec", "components", "bundle"), spec["version"], ("spec", "version"))
        self._backup(spec)
        written = self.out["spec"]
        cluster = {key: written[key] for key in SPEC_ORDER if key in written}
        metadata = self._metadata(data["metadata"])
        translated = {"apiVersion": CLUSTER_API_VERSION, "kind": "DatabaseCluster", "metadata": metadata, "spec": cluster}
        return self.translated(translated), self.problems

    # --- hooks: what is not a plain move -------------------------------------------------------

    def _metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        for key in metadata:
            if key in SERVER_METADATA:
                written_by_cluster = "is written by the cluster (an exported Instance carries it), never taken from git"
                self.warn(("metadata", key), f"ignored: '{key}' {written_by_cluster}")
        return {key: value for key, value in metadata.items() if key not in SERVER_METADATA}

    def _provider(self, spec: Mapping[str, Any]) -> str | None:
        if "providerRef" in spec:
            if "provider" in spec:
                self.refuse(("spec", "provider"), "write spec.providerRef (or, era C, spec.provider), not both")
            origin: ObjectPath = ("spec", "providerRef", "name")
            name = spec["providerRef"]["name"]
        elif "provider" in spec:
            name, origin = spec["provider"], ("spec", "provider")
        else:
            self.problems.append(self.doc.missing(("spec",), "missing required field 'providerRef' (or, era C, 'provider')"))
            return None
        return str(self.put(("spec", "provider"), self.names.providers.get(name, name), origin))

    def _topology(self, spec: Mapping[str, Any], provider: str) -> None:
        written = spec.get("topology")
        if written is None:
            return
        base = ("spec", "topology")
        self.put(base, {}, base)
        if "type" in written:
            self.put((*base, "type"), self.names.topologies.get(provider, {}).get(written["type"], written["type"]), (*base, "type"))
        if "config" in written and "parameters" in written:
            self.refuse((*base, "config"), "write topology.parameters (or, era C, topology.config), not both")
        field = "parameters" if "parameters" in written else "config" if "config" in written else None
        if field is None:
            return
        origin = (*base, field)
        if self.schemas is not None:
            self.check_upstream(self.schemas.topologies.get(self.out["spec"]["topology"].get("type", "")), origin, written[field])
        # What the upstream schema refused is left out: reported once, in upstream's words.
        kept = {key: value for key, value in written[field].items() if (*origin, key) not in self.upstream_refused}
        if not kept and written[field]:
            return
        config = self.put((*base, "config"), {}, origin)
        aliases = self.names.parameters.get((provider, self.out["spec"]["topology"].get("type", "")), {})
        for key, value in kept.items():
            name = aliases.get(key, key)
            if name in config:
                self.refuse((*origin, key), f"{key!r} is another name of {name!r}, which is already set; write one of them")
                continue
            self.put((*base, "config", name), value, (*origin, key))

    def _components(self, components: Mapping[str, Any]) -> None:
        pinned_by: dict[str, str] = {}  # component type -> the component that pinned its version
        for name, written in components.items():
            base = ("spec", "components", name)
            target = ("spec", "instances", name)
            if "name" in written and written["name"] != name:
                self.refuse((*base, "name"), f"name {written['name']!r} differs from the component's key {name!r}; remove it", key=False)
            self.refuse_by(COMPONENT_REFUSALS, base, written)
            if name == MONITORING[0] and not any(MONITORING[1] in written.get(bag, {}) for bag in ("customSpec", "parameters")):
                # Upstream's providers configure no monitoring without a MonitoringConfig name.
                self.warn(base, f"monitoring names no MonitoringConfig ({MONITORING[1]}): skipped, as upstream skips it")
                continue
            self.put(target, {}, base)
            for source, destination in COMPONENT_MOVES:
                found, value = _get(written, source)
                if not found:
                    continue
                if source in CONTAINERS:
                    value = {}
                elif source == ("resources",):
                    value = {k: v for k, v in value.items() if k != "claims"}
                self.put((*target, *destination), value, (*base, *source))
            self._scheduling_affinity(base, target, written)
            if "configMapRef" in written.get("config", {}):
                if CONFIGURATION in written.get("parameters", {}):
                    self.refuse((*base, "config"), "write config.configMapRef (era C) or parameters.configuration, not both")
                else:
                    self._config_map(base, target, written["config"])
            if "version" in written:
                self._version(name, written, pinned_by)
            self._parameters(name, base, target, written)

    def _config_map(self, base: ObjectPath, target: ObjectPath, config: Mapping[str, Any]) -> None:
        """Era C ``config.configMapRef`` (and ``key``): the configuration text, read from the
        ConfigMap under clusters/ in the Instance's namespace (git is where it lives)."""
        at = (*base, "config")
        name = config["configMapRef"].get("name")
        if not name:
            self.problems.append(self.doc.missing((*at, "configMapRef"), "config.configMapRef needs the ConfigMap's name"))
            return
        namespace = str(self.doc.data["metadata"]["namespace"])
        found = self.config_maps.get((namespace, name))
        if found is None:
            known = candidates((n for ns, n in self.config_maps if ns == namespace), name)
            message = f"no ConfigMap {name!r} in namespace {namespace} (under clusters/); known: {known}"
            self.refuse((*at, "configMapRef", "name"), message, key=False)
            return
        data = found.data.get("data") or {}
        key = config.get("key")
        if key is None and len(data) == 1:
            key = next(iter(data))
        if key is None or key not in data:
            where = (*at, "key") if "key" in config else at
            wanted = "config.key must name one of its keys" if "key" not in config else f"ConfigMap {name!r} has no key {key!r}"
            self.refuse(where, f"{wanted}; known: {candidates(data, key)} ({found.source.path})", key="key" not in config)
            return
        if not isinstance(data[key], str):
            self.refuse(at, f"ConfigMap {name!r} key {key!r} is not text ({found.source.path})")
            return
        self.put((*target, "config"), data[key], at)

    def _scheduling_affinity(self, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any]) -> None:
        """The newest providers read ``schedulingPolicy.affinity`` instead of ``affinity``: the same field."""
        found, value = _get(written, ("schedulingPolicy", "affinity"))
        if not found:
            return
        if "affinity" in written:
            self.refuse((*base, "schedulingPolicy", "affinity"), "write affinity or schedulingPolicy.affinity, not both")
            return
        self.put((*target, "affinity"), value, (*base, "schedulingPolicy", "affinity"))

    def _version(self, name: str, written: Mapping[str, Any], pinned_by: dict[str, str]) -> None:
        base = ("spec", "components", name)
        declared = self.names.component_types.get(str(self.out["spec"].get("provider")), {}).get(name)
        if "type" not in written and declared is None:
            self.refuse(
                (*base, "version"),
                f"a pinned version needs the component's type beside it (components.{name}.type): the provider declares no"
                f" component {name!r}, and versions are pinned per type",
            )
            return
        # Without a type, the component runs its declared type, which the version belongs to.
        type_name, version = written.get("type", declared), written["version"]
        type_at = (*base, "type") if "type" in written else (*base, "version")
        if type_name in pinned_by:
            first = pinned_by[type_name]
            pinned = self.out["spec"]["components"]["versions"][type_name]["version"]
            if pinned != version:
                self.refuse(
                    (*base, "version"),
                    f"components {first!r} and {name!r} both run {type_name}, which runs one version:"
                    f" {pinned} (components.{first}.version) or {version}",
                    key=False,
                )
            return
        pinned_by[type_name] = name
        versions = ("spec", "components", "versions")
        if versions not in self.origins:
            self.put(versions, {}, ("spec", "components"))
        self.put((*versions, type_name), {}, type_at)
        self.put((*versions, type_name, "version"), version, (*base, "version"))

    def _parameters(self, name: str, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any]) -> None:
        """Era D ``parameters`` and era C ``customSpec``: the few keys with an equivalent, the rest refused."""
        instance = self.out["spec"]["instances"][name]
        for bag in ("customSpec", "parameters"):
            if self.schemas is not None and bag in written:
                self.check_upstream(self.schemas.components.get(name), (*base, bag), written[bag])
            for key, value in written.get(bag, {}).items():
                path = (*base, bag, key)
                if path in self.upstream_refused:
                    continue
                if bag == "parameters" and key == CONFIGURATION:
                    self.put((*target, "config"), value, path)
                elif (name, key) == MONITORING and "monitoringConfig" not in instance:
                    self.put((*target, "monitoringConfig"), value, path)
                elif (name, key) == MONITORING:
                    self.refuse(path, f"{key} is already given in customSpec; write it once")
                else:
                    only = "parameters.configuration" + (f" and {bag}.{MONITORING[1]}" if name == MONITORING[0] else "")
                    self.refuse(path, f"{bag}.{key} has no equivalent: a component takes only {only}")

    def _backup(self, spec: Mapping[str, Any]) -> None:
        """Per-storage schedules and PITR -> the cluster's schedules (flattened) and its one PITR."""
        written = spec.get("backup")
        if written is None:
            return
        base = ("spec", "backup")
        enabled = written.get("enabled", False)  # required: the shape check reports it missing
        storages = written.get("storages", [])
        schedules: list[_Schedule] = []
        pitr: _Pitr | None = None
        on_demand: list[tuple[str, ObjectPath]] = []
        for index, storage in enumerate(storages):
            at = (*base, "storages", index)
            found = self._storage_name(at, storage)
            if found is None:
                continue
            name, name_at = found
            if storage.get("main") and len(storages) > 1:
                self.refuse((*at, "main"), "main cannot be honoured with several storages: the provider decides which one is the default")
            for number, entry in enumerate(storage.get("schedules", [])):
                self.refuse_by(SCHEDULE_REFUSALS, (*at, "schedules", number), entry)
                if not {"name", "cron"} <= entry.keys():
                    continue  # the shape check reports what is missing
                schedule = {target: entry[source] for source, target in SCHEDULE_MOVES if source in entry}
                schedule.update(enabled=entry.get("enabled", False) and enabled, backupStorage=name)
                schedules.append((schedule, (*at, "schedules", number), name_at))
            written_pitr = storage.get("pitr")
            if written_pitr is not None:
                self.refuse_by(PITR_REFUSALS, (*at, "pitr"), written_pitr)
            if written_pitr is not None and written_pitr.get("enabled") and enabled:
                if pitr is not None:
                    first = format_path(pitr[1])
                    self.refuse((*at, "pitr", "enabled"), f"PITR writes to one storage only; it is already enabled at {first}", key=False)
                    continue
                pitr = (name, (*at, "pitr"), name_at)
            elif enabled and not storage.get("schedules"):
                # On-demand backups only: registered on the native object, as upstream and everest do.
                on_demand.append((name, name_at))
        components = spec.get("components", {})
        wanted = pitr is not None or bool(on_demand) or any(s["enabled"] for s, _, _ in schedules)
        if BACKUP_AGENT not in components and wanted and enabled and "classRef" in written:
            # A backup class is run by the provider's own agent (upstream's provider-managed
            # classes): the class enables it, as upstream needs no backupAgent component.
            self.put(("spec", "instances", BACKUP_AGENT), {}, (*base, "classRef"))
        elif BACKUP_AGENT not in components and wanted:
            self.refuse(
                base,
                f"backups need the {BACKUP_AGENT} component: list it under spec.components ({BACKUP_AGENT}: {{}}),"
                " or name the backup class in backup.classRef",
            )
            # Still checked (cron, storages), not enabled: the error above is the one to read.
            schedules, pitr, on_demand = [({**s, "enabled": False}, at, name_at) for s, at, name_at in schedules], None, []
        self._put_backup(base, schedules, pitr, on_demand)

    def _put_backup(
        self, base: ObjectPath, schedules: list[_Schedule], pitr: _Pitr | None, on_demand: list[tuple[str, ObjectPath]]
    ) -> None:
        fields = {target: source for source, target in SCHEDULE_MOVES}
        if schedules:
            self.put((*base, "schedules"), [], (*base, "storages"))
        for number, (schedule, at, name_at) in enumerate(schedules):
            target = (*base, "schedules", number)
            self.put(target, {}, at)
            for key, value in schedule.items():
                self.put((*target, key), value, name_at if key == "backupStorage" else (*at, fields.get(key, key)))
        if pitr is not None:
            name, at, name_at = pitr
            self.put((*base, "pitr"), {}, at)
            self.put((*base, "pitr", "enabled"), True, (*at, "enabled"))
            self.put((*base, "pitr", "backupStorage"), name, name_at)
        if on_demand:
            self.put((*base, "storages"), [], (*base, "storages"))
        for name, name_at in on_demand:
            self.put((*base, "storages", len(self.out["spec"]["backup"]["storages"])), name, name_at)

    def _storage_name(self, at: ObjectPath, storage: Mapping[str, Any]) -> tuple[str, ObjectPath] | None:
        """The BackupStorage a storage entry writes to, and the field that names it."""
        ref = storage.get("storageRef", {}).get("name")
        logical = storage.get("name")
        if ref is not None and logical is not None and ref != logical:
            self.refuse(
                (*at, "name"),
                f"name {logical!r} differs from storageRef.name {ref!r}: a rendered cluster names each storage after its BackupStorage;"
                " remove name",
                key=False,
            )
        if ref is not None:
            return ref, (*at, "storageRef", "name")
        if logical is not None:
            return logical, (*at, "name")
        self.problems.append(self.doc.missing(at, "a backup storage needs storageRef.name: the BackupStorage it writes to"))
        return None

