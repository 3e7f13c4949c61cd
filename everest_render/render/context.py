"""The template contract: a resolved cluster as the names a provider's templates read.

One serializer, closed and typed: `template_context` builds exactly the names docs/providers.md
lists (tests/test_layout.py compares the two), from the resolved cluster only (never the raw
input). `explain` shows the same parts through the functions below.
"""

# No `from __future__ import annotations`: TypedDict must see NotRequired at run time (a test
# reads the declared names and required keys).
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from everest_render.model import BackupStorage, Definition, Expose, ResolvedBackup, ResolvedCluster, ResolvedComponent, ResolvedMonitoring


class ClusterContext(TypedDict):
    name: str
    namespace: str
    labels: dict[str, str]
    secretsName: str
    paused: bool
    allowUnsafeConfiguration: bool
    crVersion: str


class TopologyContext(TypedDict):
    type: str
    config: dict[str, Any]


class ExposeContext(TypedDict):
    type: str
    sourceRanges: list[str]
    annotations: dict[str, str]


# "class" is a Python keyword, hence the functional form.
StorageContext = TypedDict("StorageContext", {"size": str | None, "class": str | None})


class ComponentContext(TypedDict):
    name: str
    type: str
    version: str
    image: str
    replicas: int | None
    resources: dict[str, Any] | None
    storage: StorageContext
    config: str | None
    affinity: dict[str, Any] | None
    expose: ExposeContext | None
    monitoringConfig: NotRequired[str]  # only when the cluster writes it


class VersionContext(TypedDict):
    version: str
    image: str


class CatalogueEntryContext(TypedDict):
    version: str
    image: str
    default: bool


class BackupStorageContext(TypedDict):
    name: str
    type: str
    bucket: str
    region: str | None
    endpointURL: str | None
    endpointScheme: str | None  # http or https, none when endpointURL has no scheme
    endpointHost: str | None  # host[:port] of endpointURL
    endpointPath: str
    verifyTLS: bool
    forcePathStyle: bool
    credentialsSecretName: str


class ScheduleContext(TypedDict):
    name: str
    schedule: str
    retentionCopies: int | None
    backupStorage: str


class PitrContext(TypedDict):
    enabled: bool
    backupStorage: str | None
    uploadIntervalSec: int | None


class BackupContext(TypedDict):
    pathPrefix: str
    storages: dict[str, BackupStorageContext]
    schedules: list[ScheduleContext]
    pitr: PitrContext | None


class MonitoringContext(TypedDict):
    configName: str
    url: str
    serverHost: str
    image: str
    credentialsSecretName: str
    verifyTLS: bool


class OperatorContext(TypedDict):
    name: str
    version: str


class ProviderContext(TypedDict):
    name: str
    operator: OperatorContext


class TemplateContext(TypedDict):
    """Everything a template may read (docs/providers.md, "The context")."""

    cluster: ClusterContext
    topology: TopologyContext
    components: dict[str, ComponentContext]
    versions: dict[str, VersionContext]
    catalogue: dict[str, list[CatalogueEntryContext]]
    pinned: list[str]
    defaulted: list[str]
    backup: BackupContext
    monitoring: MonitoringContext | None
    provider: ProviderContext


def template_context(resolved: ResolvedCluster) -> TemplateContext:
    """The documented template context of ``resolved``, as plain values."""
    cluster = resolved.cluster
    return {
        "cluster": {
            "name": cluster.ref.name,
            "namespace": cluster.ref.namespace,
            "labels": dict(cluster.labels),
            "secretsName": resolved.secrets_name,
            "paused": resolved.paused,
            "allowUnsafeConfiguration": resolved.allow_unsafe_configuration,
            "crVersion": resolved.cr_version,
        },
        "topology": topology_context(resolved),
        "components": {name: component_context(c) for name, c in resolved.components.items()},
        "versions": versions_context(resolved),
        "catalogue": catalogue_context(resolved.definition),
        "pinned": list(resolved.pinned),
        "defaulted": sorted({d.path for d in resolved.defaults}),
        "backup": backup_context(resolved.backup),
        "monitoring": monitoring_context(resolved.monitoring),
        "provider": {
            "name": resolved.provider.name,
            "operator": {"name": resolved.provider.operator_name, "version": resolved.provider.operator_version},
        },
    }


def catalogue_context(definition: Definition) -> dict[str, list[CatalogueEntryContext]]:
    """The definition's catalogue, built once per definition and shared by its clusters'
    contexts (the same values for each; a template cannot change them: the sandbox is
    immutable, and the helpers copy what they return)."""
    built = _CATALOGUES.get(id(definition))
    if built is not None and built[0] is definition:
        return built[1]
    catalogue: dict[str, list[CatalogueEntryContext]] = {
        t: [{"version": v.version, "image": v.image, "default": v.default} for v in ct.versions]
        for t, ct in definition.component_types.items()
    }
    if len(_CATALOGUES) >= 64:  # a long-lived process (tests, a server) renders many repositories
        _CATALOGUES.clear()
    _CATALOGUES[id(definition)] = (definition, catalogue)
    return catalogue


# By the identity of the definition, which the entry holds (so the id is not reused meanwhile).
_CATALOGUES: dict[int, tuple[Definition, dict[str, list[CatalogueEntryContext]]]] = {}


def topology_context(resolved: ResolvedCluster) -> TopologyContext:
    return {"type": resolved.topology, "config": dict(resolved.topology_config)}


def versions_context(resolved: ResolvedCluster) -> dict[str, VersionContext]:
    return {t: {"version": v.version, "image": v.image} for t, v in resolved.versions.items()}


def component_context(component: ResolvedComponent) -> ComponentContext:
    storage: Mapping[str, Any] = component.storage or {}
    context: ComponentContext = {
        "name": component.name,
        "type": component.type,
        "version": component.version,
        "image": component.image,
        "replicas": component.replicas,
        "resources": dict(component.resources) if component.resources else None,
        "storage": {"size": storage.get("size"), "class": storage.get("class")},
        "config": component.config,
        "affinity": dict(component.affinity) if component.affinity else None,
        "expose": expose_context(component.expose),
    }
    if "monitoringConfig" in component.settings:
        context["monitoringConfig"] = component.settings["monitoringConfig"]
    return context


def expose_context(expose: Expose | None) -> ExposeContext | None:
    if expose is None:
        return None
    return {"type": expose.type, "sourceRanges": list(expose.source_ranges), "annotations": dict(expose.annotations)}


def backup_context(backup: ResolvedBackup) -> BackupContext:
    return {
        "pathPrefix": backup.path_prefix,
        "storages": {name: backup_storage_context(name, s) for name, s in backup.storages.items()},
        "schedules": schedules_context(backup),
        "pitr": pitr_context(backup),
    }


def backup_storage_context(name: str, storage: BackupStorage) -> BackupStorageContext:
    scheme, host, path = storage.endpoint_parts  # parsed once, not once per part
    return {
        "name": name,
        "type": storage.type,
        "bucket": storage.bucket,
        "region": storage.region,
        "endpointURL": storage.endpoint_url,
        "endpointScheme": scheme,
        "endpointHost": host,
        "endpointPath": path,
        "verifyTLS": storage.verify_tls,
        "forcePathStyle": storage.force_path_style,
        "credentialsSecretName": storage.credentials_secret_name,
    }


def schedules_context(backup: ResolvedBackup) -> list[ScheduleContext]:
    return [
        {"name": s.name, "schedule": s.schedule, "retentionCopies": s.retention_copies, "backupStorage": s.storage}
        for s in backup.schedules
    ]


def pitr_context(backup: ResolvedBackup) -> PitrContext | None:
    pitr = backup.pitr
    if pitr is None:
        return None
    return {"enabled": pitr.enabled, "backupStorage": pitr.storage, "uploadIntervalSec": pitr.upload_interval_sec}


def monitoring_context(monitoring: ResolvedMonitoring | None) -> MonitoringContext | None:
    if monitoring is None:
        return None
    config = monitoring.config
    return {
        "configName": config.ref.name,
        "url": config.url,
        "serverHost": config.server_host,
        "image": monitoring.image,
        "credentialsSecretName": config.credentials_secret_name,
        "verifyTLS": config.verify_tls,
    }
