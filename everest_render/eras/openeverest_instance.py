"""Upstream OpenEverest ``core.openeverest.io/v1alpha1`` ``Instance`` -> the DatabaseCluster it means.

Runs in the parse stage, called by parse/inputs.py: an Instance under clusters/ is checked against its
schema (eras/schema.py), translated into an ``everest.percona.com/v2alpha1``
DatabaseCluster document, and then takes the DatabaseCluster path unchanged, so resolve,
render, check and emit never see an Instance.

Both upstream API eras are read (reference notes §1, §3): era C (``spec.provider``,
``topology.config``, ``components.<n>.config``/``customSpec``, ``spec.global``) and era D
(``spec.providerRef.name``, ``topology.parameters``, ``components.<n>.parameters``,
``components.<n>.service``, ``spec.parameters``).

Positions are mapped through: the translated document's ``positions`` give every translated
path the line and column of the field it came from, and ``positions.origins`` names that
field, so an error raised here or in any later stage points at the Instance's own line and
names the Instance's own path.

Versions: upstream pins a version per component, the DatabaseCluster per component *type*.
Which type a component runs is the definition's business, and the translation does not read
the catalogue (it runs before it is built, and stays a function of the document alone), so a
component that pins ``version`` must also say its ``type``. Components of one type must pin
one version (they run one image).

Pure: no files, clock or environment; the schema is package data, loaded once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


# Component parameters that have an equivalent: the engine configuration text on any
# component, and the MonitoringConfig on the monitoring component (era C writes it in
# customSpec, era D in parameters). Every other parameter is refused.
CONFIGURATION = "configuration"
MONITORING = ("monitoring", "monitoringConfigName")
BACKUP_AGENT = "backupAgent"

_SERVICE_FIELDS = (("serviceType", "type"), ("annotations", "annotations"))


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


class _Translation:
    """The working state of translating one Instance: problems and the origin of each new path."""

    def __init__(self, document: Document, names: ProviderNames) -> None:
        self.doc = document
        self.names = names
        self.problems: list[Diagnostic] = []
        # translated path -> Instance path, for every path whose name or place changed
        self.origins: dict[ObjectPath, ObjectPath] = {("spec", "instances"): ("spec", "components")}

    def refuse(self, path: ObjectPath, message: str, *, key: bool = True) -> None:
        self.problems.append(self.doc.at(path, message, key=key))

    def warn(self, path: ObjectPath, message: str) -> None:
        d = self.doc.at(path, message, key=True)
        self.problems.append(Diagnostic(d.file, d.line, d.column, d.message, d.path, Severity.WARNING))

    def run(self) -> tuple[Document | None, list[Diagnostic]]:
        data = self.doc.data
        spec = data["spec"]
        provider = self._provider(spec)
        if provider is None:
            return None, self.problems
        self._refuse_instance_fields(spec)
        cluster: dict[str, Any] = {"provider": provider}
        topology = self._topology(spec, provider)
        if topology is not None:
            cluster["topology"] = topology
        instances, versions = self._components(spec.get("components", {}))
        if versions:
            cluster["components"] = {"versions": versions}
        if "components" in spec:
            cluster["instances"] = instances
        backup = self._backup(spec, instances)
        if backup:
            cluster["backup"] = backup
        translated = {"apiVersion": CLUSTER_API_VERSION, "kind": "DatabaseCluster", "metadata": data["metadata"], "spec": cluster}
        document = Document(self.doc.source, self.doc.index, translated, self._positions(translated))
        return document, self.problems

    # --- spec ------------------------------------------------------------------------------

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
        self.origins[("spec", "provider")] = origin
        return str(self.names.providers.get(name, name))

    def _refuse_instance_fields(self, spec: Mapping[str, Any]) -> None:
        if "version" in spec:
            self.refuse(
                ("spec", "version"),
                "version bundles are not supported: pin each component's version (components.<name>.type and .version) instead",
            )
        for field in ("global", "parameters"):
            if spec.get(field):
                self.refuse(("spec", field), f"spec.{field} (instance-wide provider parameters) has no equivalent; remove it")
        if "dataSource" in spec:
            message = "dataSource is not supported: a rendered cluster is not seeded from a backup; restore it separately"
            self.refuse(("spec", "dataSource"), message)
        if spec.get("deletionPolicy") == "Orphan":
            self.refuse(
                ("spec", "deletionPolicy"),
                "deletionPolicy Orphan cannot be honoured: removing a cluster from git removes its objects (Cascade)",
                key=False,
            )
        if "maintenance" in spec:
            self.refuse(
                ("spec", "maintenance"),
                "maintenance is not supported: operator upgrades follow the provider's version in git, not approvals in the cluster",
            )

    def _topology(self, spec: Mapping[str, Any], provider: str) -> dict[str, Any] | None:
        written = spec.get("topology")
        if written is None:
            return None
        topology: dict[str, Any] = {}
        if "type" in written:
            topology["type"] = self.names.topologies.get(provider, {}).get(written["type"], written["type"])
        if "config" in written and "parameters" in written:
            self.refuse(("spec", "topology", "config"), "write topology.parameters (or, era C, topology.config), not both")
        field = "parameters" if "parameters" in written else "config" if "config" in written else None
        if field is None:
            return topology
        origin = ("spec", "topology", field)
        self.origins[("spec", "topology", "config")] = origin
        aliases = self.names.parameters.get((provider, topology.get("type", "")), {})
        config: dict[str, Any] = {}
        for key, value in written[field].items():
            name = aliases.get(key, key)
            if name in config:
                self.refuse((*origin, key), f"{key!r} is another name of {name!r}, which is already set; write one of them")
                continue
            config[name] = value
            if name != key:
                self.origins[("spec", "topology", "config", name)] = (*origin, key)
        topology["config"] = config
        return topology

    # --- components ------------------------------------------------------------------------

    def _components(self, components: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        instances: dict[str, Any] = {}
        versions: dict[str, Any] = {}
        pinned_by: dict[str, str] = {}  # component type -> the component that pinned its version
        for name, written in components.items():
            base = ("spec", "components", name)
            target = ("spec", "instances", name)
            if "name" in written and written["name"] != name:
                self.refuse((*base, "name"), f"name {written['name']!r} differs from the component's key {name!r}; remove it", key=False)
            if "image" in written:
                self.refuse((*base, "image"), "image overrides are not supported: the image is the catalogue's for the component's version")
            if "config" in written:
                self.refuse(
                    (*base, "config"),
                    "config refers to a Secret or ConfigMap, which the renderer cannot read (it reads only files in git):"
                    " inline the text as parameters.configuration",
                )
            instance: dict[str, Any] = {}
            if "type" in written:
                instance["type"] = written["type"]
            if "version" in written:
                self._version(name, written, versions, pinned_by)
            for field in ("replicas", "affinity"):
                if field in written:
                    instance[field] = written[field]
            if "resources" in written:
                instance["resources"] = self._resources(base, written["resources"])
            if "storage" in written:
                instance["storage"] = self._storage(base, target, written["storage"])
            if "service" in written:
                instance["expose"] = self._service(base, target, written["service"])
            self._parameters(name, base, target, written, instance)
            instances[name] = instance
        if versions:
            self.origins[("spec", "components", "versions")] = ("spec", "components")
        return instances, versions

    def _version(self, name: str, written: Mapping[str, Any], versions: dict[str, Any], pinned_by: dict[str, str]) -> None:
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
            if versions[type_name]["version"] != version:
                self.refuse(
                    (*base, "version"),
                    f"components {first!r} and {name!r} both run {type_name}, which runs one version:"
                    f" {versions[type_name]['version']} (components.{first}.version) or {version}",
                    key=False,
                )
            return
        pinned_by[type_name] = name
        versions[type_name] = {"version": version}
        self.origins[("spec", "components", "versions", type_name)] = (*base, "type")
        self.origins[("spec", "components", "versions", type_name, "version")] = (*base, "version")

    def _resources(self, base: ObjectPath, written: Mapping[str, Any]) -> dict[str, Any]:
        if "claims" in written:
            self.refuse((*base, "resources", "claims"), "resource claims (dynamic resource allocation) are not supported; remove claims")
        return {k: v for k, v in written.items() if k != "claims"}

    def _storage(self, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any]) -> dict[str, Any]:
        storage: dict[str, Any] = {}
        if "size" in written:
            storage["size"] = written["size"]
        if "storageClass" in written:
            storage["class"] = written["storageClass"]
            self.origins[(*target, "storage", "class")] = (*base, "storage", "storageClass")
        return storage

    def _service(self, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any]) -> dict[str, Any]:
        self.origins[(*target, "expose")] = (*base, "service")
        expose: dict[str, Any] = {}
        for field, name in _SERVICE_FIELDS:
            if field in written:
                expose[name] = written[field]
                self.origins[(*target, "expose", name)] = (*base, "service", field)
        ranges = written.get("loadBalancerService", {}).get("sourceRanges")
        if ranges is not None:
            expose["sourceRanges"] = ranges
            self.origins[(*target, "expose", "sourceRanges")] = (*base, "service", "loadBalancerService", "sourceRanges")
        return expose

    def _parameters(self, name: str, base: ObjectPath, target: ObjectPath, written: Mapping[str, Any], instance: dict[str, Any]) -> None:
        """Era D ``parameters`` and era C ``customSpec``: the few keys with an equivalent, the rest refused."""
        for bag in ("customSpec", "parameters"):
            for key, value in written.get(bag, {}).items():
                path = (*base, bag, key)
                if bag == "parameters" and key == CONFIGURATION:
                    instance["config"] = value
                    self.origins[(*target, "config")] = path
                elif (name, key) == MONITORING and "monitoringConfig" not in instance:
                    instance["monitoringConfig"] = value
                    self.origins[(*target, "monitoringConfig")] = path
                elif (name, key) == MONITORING:
                    self.refuse(path, f"{key} is already given in customSpec; write it once")
                else:
                    only = "parameters.configuration" + (f" and {bag}.{MONITORING[1]}" if name == MONITORING[0] else "")
                    self.refuse(path, f"{bag}.{key} has no equivalent: a component takes only {only}")

    # --- backup ----------------------------------------------------------------------------

    def _backup(self, spec: Mapping[str, Any], instances: Mapping[str, Any]) -> dict[str, Any]:
        """Per-storage schedules and PITR -> the cluster's schedules (flattened) and its one PITR."""
        written = spec.get("backup")
        if written is None:
            return {}
        base = ("spec", "backup")
        if "classRef" in written:
            self.refuse(
                (*base, "classRef"),
                "backup.classRef has no equivalent: the provider's own backup agent takes the backups"
                " (list backupAgent under spec.components); remove classRef",
            )
        enabled = written["enabled"]
        storages = written.get("storages", [])
        schedules: list[dict[str, Any]] = []
        pitr: dict[str, Any] | None = None
        pitr_at: ObjectPath = ()
        for index, storage in enumerate(storages):
            at = (*base, "storages", index)
            found = self._storage_name(at, storage)
            if found is None:
                continue
            name, origin = found
            if storage.get("main") and len(storages) > 1:
                self.refuse((*at, "main"), "main cannot be honoured with several storages: the provider decides which one is the default")
            for number, entry in enumerate(storage.get("schedules", [])):
                self._refuse_settings((*at, "schedules", number), entry, "schedule")
                target = (*base, "schedules", len(schedules))
                schedule = {"name": entry["name"], "enabled": entry["enabled"] and enabled, "schedule": entry["cron"]}
                schedule["backupStorage"] = name
                if "retentionCopies" in entry:
                    schedule["retentionCopies"] = entry["retentionCopies"]
                schedules.append(schedule)
                self.origins[target] = (*at, "schedules", number)
                self.origins[(*target, "schedule")] = (*at, "schedules", number, "cron")
                self.origins[(*target, "backupStorage")] = origin
            written_pitr = storage.get("pitr")
            if written_pitr is not None:
                self._refuse_settings((*at, "pitr"), written_pitr, "PITR")
            if written_pitr is not None and written_pitr["enabled"] and enabled:
                if pitr is not None:
                    first = format_path(pitr_at)
                    self.refuse((*at, "pitr", "enabled"), f"PITR writes to one storage only; it is already enabled at {first}", key=False)
                    continue
                pitr, pitr_at = {"enabled": True, "backupStorage": name}, (*at, "pitr")
                self.origins[(*base, "pitr")] = pitr_at
                self.origins[(*base, "pitr", "backupStorage")] = origin
            elif enabled and not storage.get("schedules"):
                self.warn(at, f"storage {name!r} has no schedules and no enabled PITR: nothing is rendered for it; ignored")
        self.origins[(*base, "schedules")] = (*base, "storages")
        if BACKUP_AGENT not in instances and (pitr is not None or any(s["enabled"] for s in schedules)):
            self.refuse(
                base, f"backup schedules and PITR need the {BACKUP_AGENT} component: list it under spec.components ({BACKUP_AGENT}: {{}})"
            )
            # Still checked (cron, storages), not enabled: the error above is the one to read.
            schedules, pitr = [{**s, "enabled": False} for s in schedules], None
        backup: dict[str, Any] = {}
        if schedules:
            backup["schedules"] = schedules
        if pitr is not None:
            backup["pitr"] = pitr
        return backup

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

    def _refuse_settings(self, at: ObjectPath, entry: Mapping[str, Any], what: str) -> None:
        for bag in ("config", "parameters"):
            if entry.get(bag):
                self.refuse((*at, bag), f"{what} {bag} (the backup class's options) has no equivalent; remove it")

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
