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
Which type a component runs is the definition's business, and the translation does not read
the catalogue (it runs before it is built, and stays a function of the document alone), so a
component that pins ``version`` must also say its ``type``. Components of one type must pin
one version (they run one image).

Pure: no files, clock or environment; the schema is package data, loaded once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath, Severity, format_path
from everest_render.eras.schema import instance_validator
from everest_render.load.documents import Document, Positions
from everest_render.model import Provider
from everest_render.schema_check import schema_problems

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

    @classmethod
    def declared_by(cls, providers: Sequence[Provider]) -> ProviderNames:
        """Later providers' declarations win: a repository's provider over a built-in one."""
        names: dict[str, str] = {}
        topologies: dict[str, Mapping[str, str]] = {}
        parameters: dict[tuple[str, str], Mapping[str, str]] = {}
        for provider in providers:
            aliases = provider.instance_aliases
            names.update(dict.fromkeys(aliases.names, provider.name))
            if aliases.topologies:
                topologies[provider.name] = aliases.topologies
            for topology, renamed in aliases.topology_parameters.items():
                parameters[(provider.name, topology)] = renamed
        return cls(names, topologies, parameters)


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
        ("config",),
        "config refers to a Secret or ConfigMap, which the renderer cannot read (it reads only files in git):"
        " inline the text as parameters.configuration",
        _present,
        True,
    ),
    (("resources", "claims"), "resource claims (dynamic resource allocation) are not supported; remove claims", _present, True),
)
BACKUP_REFUSALS: tuple[Refusal, ...] = (
    (
        ("classRef",),
        "backup.classRef has no equivalent: the provider's own backup agent takes the backups"
        " (list backupAgent under spec.components); remove classRef",
        _present,
        True,
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
SPEC_ORDER = ("provider", "topology", "components", "instances", "backup")


def translate_instance(document: Document, providers: Sequence[Provider]) -> tuple[Document | None, list[Diagnostic]]:
    """The DatabaseCluster document ``document`` (an Instance) means, and every problem found.

    None when the Instance's shape is wrong or it names no provider. A refused field is an
    error, is left out, and the rest is still translated, so later stages report their own
    problems in the same run (which fails on the errors; nothing is written).
    """
    problems = _shape_problems(document)
    if problems:
        return None, problems
    return _Translation(document, ProviderNames.declared_by(providers)).run()


def _shape_problems(document: Document) -> list[Diagnostic]:
    problems = []
    for problem in schema_problems(instance_validator(), document.data):
        if problem.missing:
            problems.append(document.missing(problem.path, problem.message))
        else:
            problems.append(document.at(problem.path, problem.message, key=problem.at_key))
    return problems


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


class _Translation:
    """The working state of translating one Instance: the output, its origins, the problems."""

    def __init__(self, document: Document, names: ProviderNames) -> None:
        self.doc = document
        self.names = names
        self.problems: list[Diagnostic] = []
        self.out: dict[str, Any] = {}
        # translated path -> Instance path, recorded by put for every path it writes
        self.origins: dict[ObjectPath, ObjectPath] = {}

    def put(self, target: ObjectPath, value: Any, source: ObjectPath) -> Any:
        """Write ``value`` at ``target`` (parents are mappings made on the way, or a list it
        appends to) and record that it came from ``source``."""
        parent: Any = self.out
        for part in target[:-1]:
            parent = parent.setdefault(part, {}) if isinstance(parent, dict) else parent[part]
        if isinstance(parent, list):
            parent.append(value)
        else:
            parent[target[-1]] = value
        self.origins[target] = source
        return value

    def refuse(self, path: ObjectPath, message: str, *, key: bool = True) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def refuse_by(self, table: Sequence[Refusal], base: ObjectPath, written: Any) -> None:
        for path, message, when, key in table:
            found, value = _get(written, path)
            if found and when(value):
                self.refuse((*base, *path), message, key=key)

    def warn(self, path: ObjectPath, message: str) -> None:
        d = self.doc.at(path, message, key=True)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def run(self) -> tuple[Document | None, list[Diagnostic]]:
        data = self.doc.data
        spec = data["spec"]
        provider = self._provider(spec)
        if provider is None:
            return None, self.problems
        self.refuse_by(INSTANCE_REFUSALS, ("spec",), spec)
        self._topology(spec, provider)
        if "components" in spec:
            self.put(("spec", "instances"), {}, ("spec", "components"))
            self._components(spec["components"])
        if "version" in spec:
            # The bundle; without one, resolve applies the definition's default bundle (parse
            # marks a translated Instance so), as upstream's PrepareForSync does.
            self.put(("spec", "components", "bundle"), spec["version"], ("spec", "version"))
        self._backup(spec)
        written = self.out["spec"]
        cluster = {key: written[key] for key in SPEC_ORDER if key in written}
        translated = {"apiVersion": CLUSTER_API_VERSION, "kind": "DatabaseCluster", "metadata": data["metadata"], "spec": cluster}
        document = Document(self.doc.source, self.doc.index, translated, self._positions(translated))
        return document, self.problems

    # --- hooks: what is not a plain move -------------------------------------------------------

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
        config = self.put((*base, "config"), {}, origin)
        aliases = self.names.parameters.get((provider, self.out["spec"]["topology"].get("type", "")), {})
        for key, value in written[field].items():
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
            if "version" in written:
                self._version(name, written, pinned_by)
            self._parameters(name, base, target, written)

    def _version(self, name: str, written: Mapping[str, Any], pinned_by: dict[str, str]) -> None:
        base = ("spec", "components", name)
        if "type" not in written:
            self.refuse(
                (*base, "version"),
                "a pinned version needs the component's type beside it (components.<name>.type): versions are pinned per type",
            )
            return
        type_name, version = written["type"], written["version"]
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
        self.put((*versions, type_name), {}, (*base, "type"))
        self.put((*versions, type_name, "version"), version, (*base, "version"))

    def _parameters(self, name: str, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any]) -> None:
        """Era D ``parameters`` and era C ``customSpec``: the few keys with an equivalent, the rest refused."""
        instance = self.out["spec"]["instances"][name]
        for bag in ("customSpec", "parameters"):
            for key, value in written.get(bag, {}).items():
                path = (*base, bag, key)
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
        self.refuse_by(BACKUP_REFUSALS, base, written)
        enabled = written["enabled"]
        storages = written.get("storages", [])
        schedules: list[_Schedule] = []
        pitr: _Pitr | None = None
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
                schedule = {target: entry[source] for source, target in SCHEDULE_MOVES if source in entry}
                schedule.update(enabled=entry["enabled"] and enabled, backupStorage=name)
                schedules.append((schedule, (*at, "schedules", number), name_at))
            written_pitr = storage.get("pitr")
            if written_pitr is not None:
                self.refuse_by(PITR_REFUSALS, (*at, "pitr"), written_pitr)
            if written_pitr is not None and written_pitr["enabled"] and enabled:
                if pitr is not None:
                    first = format_path(pitr[1])
                    self.refuse((*at, "pitr", "enabled"), f"PITR writes to one storage only; it is already enabled at {first}", key=False)
                    continue
                pitr = (name, (*at, "pitr"), name_at)
            elif enabled and not storage.get("schedules"):
                self.warn(at, f"storage {name!r} has no schedules and no enabled PITR: nothing is rendered for it; ignored")
        components = spec.get("components", {})
        if BACKUP_AGENT not in components and (pitr is not None or any(s["enabled"] for s, _, _ in schedules)):
            self.refuse(
                base, f"backup schedules and PITR need the {BACKUP_AGENT} component: list it under spec.components ({BACKUP_AGENT}: {{}})"
            )
            # Still checked (cron, storages), not enabled: the error above is the one to read.
            schedules, pitr = [({**s, "enabled": False}, at, name_at) for s, at, name_at in schedules], None
        self._put_backup(base, schedules, pitr)

    def _put_backup(self, base: ObjectPath, schedules: list[_Schedule], pitr: _Pitr | None) -> None:
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

    # --- positions -------------------------------------------------------------------------

    def _positions(self, data: Any) -> Positions:
        """Positions of the translated data: each path at the position of the field it came from."""
        source = self.doc.positions
        positions = Positions(origins=self.origins)

        def walk(node: Any, path: ObjectPath) -> None:
            origin = positions.written(path)
            positions.values[path] = source.value(origin)
            if origin in source.keys:
                positions.keys[path] = source.keys[origin]
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, (*path, key))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    walk(value, (*path, index))

        walk(data, ())
        return positions
