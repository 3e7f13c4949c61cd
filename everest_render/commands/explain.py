"""What `explain` and `providers list` print: views of resolved data, text or JSON.

`explain` shows a cluster as its templates see it, so the parts the two share (topology,
versions, expose, schedules, PITR) come from the one template-context serializer."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from everest_render.check.cel_rules import inventory
from everest_render.diagnostics import closest
from everest_render.emit.output import EXTENSIONS_FILE
from everest_render.model import CatalogueVersion, PassthroughObject, RenderedObject, ResolvedCluster
from everest_render.render.context import expose_context, pitr_context, schedules_context, topology_context, versions_context
from everest_render.render.templates import ProviderRenderer

if TYPE_CHECKING:
    from everest_render.resolve.catalog import Catalog
    from everest_render.results import ResolveResult


def find_cluster(result: ResolveResult, wanted: str) -> ResolvedCluster | None:
    return next((c for c in result.clusters if str(c.ref) == wanted), None)


@dataclass(frozen=True)
class Lookup:
    """What ``explain [NAMESPACE/]NAME`` names among the repository's clusters."""

    ref: str | None  # NAMESPACE/NAME, when exactly one cluster matches
    ambiguous: tuple[str, ...]  # a bare NAME that several namespaces have
    suggestion: str  # ``; did you mean shop/orders?`` when nothing matches but something is near


def look_up(result: ResolveResult, wanted: str) -> Lookup:
    """Clusters that were read count, valid or not: a broken one is named, not "unknown"."""
    refs = sorted({str(c.ref) for c in result.inputs.clusters})
    if "/" in wanted:
        if wanted in refs:
            return Lookup(wanted, (), "")
        # Within a namespace that exists, a near name; else a near namespace/name (the shared
        # namespace part alone would make every cluster of it look near).
        namespace, name = wanted.split("/", 1)
        names = [ref.split("/", 1)[1] for ref in refs if ref.startswith(namespace + "/")]
        near = closest(name, names) if names else closest(wanted, refs)
        return Lookup(None, (), "" if near is None else f"; did you mean {namespace + '/' + near if names else near}?")
    matches = tuple(ref for ref in refs if ref.split("/", 1)[1] == wanted)
    if len(matches) == 1:
        return Lookup(matches[0], (), "")
    near = closest(wanted, (ref.split("/", 1)[1] for ref in refs))
    spelled = [ref for ref in refs if ref.split("/", 1)[1] == near]
    return Lookup(None, matches if len(matches) > 1 else (), f"; did you mean {' or '.join(spelled)}?" if spelled else "")


def _origin(provider_or_definition: Any) -> str:
    return "built-in" if provider_or_definition.builtin else provider_or_definition.document.source.path


def _version_source(cluster: ResolvedCluster, type_name: str, version: str) -> dict[str, Any]:
    """Where a resolved version's catalogue entry came from: the definition (and the upstream
    file its entry names), or the repository's settings file that added it."""
    entry = cluster.definition.component_types[type_name].find(version)
    added = entry is not None and entry.added_by_repository
    return {
        "definition": _origin(cluster.definition),
        "source": entry.source if entry is not None else None,
        "addedByRepository": added,
    }


def _source_note(source: dict[str, Any]) -> str:
    if source["addedByRepository"]:
        return f"added by the repository ({source['source']})"
    where = f"{source['definition']} definition" if source["definition"] == "built-in" else f"definition {source['definition']}"
    return where + (f", from {source['source']}" if source["source"] else "")


def explain_json(cluster: ResolvedCluster, catalog: Catalog | None, passthrough: Sequence[PassthroughObject] = ()) -> dict[str, Any]:
    """``passthrough``: the repository's pass-through objects, to name who supplies each Secret."""
    replaced = catalog.replaced if catalog else ()
    provider, definition = cluster.provider, cluster.definition
    added = _extension_objects(cluster)
    return {
        "cluster": str(cluster.ref),
        "source": cluster.cluster.document.source.path,
        "provider": {
            "name": provider.name,
            "source": _origin(provider),
            "replacesBuiltin": f"Provider/{provider.name}" in replaced,
            "operator": {
                "name": provider.operator_name,
                "version": provider.operator_version,
                "release": provider.release_origin,
                "releases": [r.version for r in provider.releases],
            },
        },
        "definition": {
            "name": definition.name,
            "source": _origin(definition),
            "replacesBuiltin": f"DatabaseClusterDefinition/{definition.name}" in replaced,
        },
        "topology": topology_context(cluster),
        "crVersion": cluster.cr_version,
        "secretsName": cluster.secrets_name,
        "paused": cluster.paused,
        "allowUnsafeConfiguration": cluster.allow_unsafe_configuration,
        "labels": dict(cluster.labels),
        "gitops": {
            "annotations": dict(cluster.gitops.annotations),
            "deletionProtection": {"level": cluster.gitops.deletion_protection, "origin": cluster.gitops.origins["deletionProtection"]},
            "keepVolumes": {
                "enabled": cluster.gitops.keep_volumes,
                "origin": cluster.gitops.origins["keepVolumes"],
                "finalizersDropped": list(cluster.provider.gitops.volume_finalizers) if cluster.gitops.keep_volumes else [],
            },
        },
        "bundle": None if cluster.bundle is None else {"name": cluster.bundle.name, "origin": cluster.bundle.origin},
        "versions": versions_context(cluster),
        "versionSources": {t: _version_source(cluster, t, v.version) for t, v in cluster.versions.items()},
        "components": {
            name: {
                "type": c.type,
                "version": c.version,
                "image": c.image,
                "replicas": c.replicas,
                "resources": c.resources,
                "storage": c.storage,
                "config": c.config,
                "expose": expose_context(c.expose),
            }
            for name, c in cluster.components.items()
        },
        "backup": _backup_json(cluster),
        "monitoring": None
        if cluster.monitoring is None
        else {
            "monitoringConfig": str(cluster.monitoring.config.ref),
            "serverHost": cluster.monitoring.config.server_host,
            "image": cluster.monitoring.image,
        },
        "secrets": _secrets(cluster, passthrough, added),
        "extensions": _extensions_json(cluster, added),
        "defaults": [{"path": d.path, "value": d.value, "origin": d.origin} for d in cluster.defaults],
    }


def _backup_json(cluster: ResolvedCluster) -> dict[str, Any]:
    backup = cluster.backup
    return {
        "pathPrefix": backup.path_prefix,
        "storages": {name: {"type": s.type, "bucket": s.bucket, "source": s.document.source.path} for name, s in backup.storages.items()},
        # The templates' serializer for both: disabled schedules are listed, marked, not rendered.
        "schedules": [
            *({**s, "enabled": True} for s in schedules_context(backup)),
            *({**s, "enabled": False} for s in schedules_context(dataclasses.replace(backup, schedules=backup.disabled_schedules))),
        ],
        "pitr": pitr_context(backup),
    }


def _extension_objects(cluster: ResolvedCluster) -> list[RenderedObject]:
    """What the cluster's extensions add, as rendered for it (a template that fails for the
    cluster adds nothing here; `validate` reports why)."""
    if not cluster.extensions:
        return []
    from everest_render.extend.render import render_extensions

    return render_extensions([cluster])[0]


def _added_file(cluster: ResolvedCluster, rendered: RenderedObject) -> str:
    name = EXTENSIONS_FILE if rendered.shared else f"{cluster.ref.name}.yaml"
    return f"out/{cluster.ref.namespace}/{name}"


def _extensions_json(cluster: ResolvedCluster, added: Sequence[RenderedObject]) -> dict[str, Any]:
    applied = []
    for entry in cluster.extensions:
        extension = entry.extension
        objects = [
            {"kind": o.obj.get("kind"), "name": (o.obj.get("metadata") or {}).get("name"), "file": _added_file(cluster, o)}
            for o in added
            if o.extension == extension.name
        ]
        applied.append({"name": extension.name, "order": extension.order, "source": extension.folder, "objects": objects})
    skipped = [{"name": name, "why": why} for name, why in cluster.extensions_skipped.items()]
    return {"applied": applied, "skipped": skipped}


def _secrets(
    cluster: ResolvedCluster, passthrough: Sequence[PassthroughObject], added: Sequence[RenderedObject] = ()
) -> list[dict[str, Any]]:
    from everest_render.resolve.suppliers import extension_suppliers, suppliers

    supplied = {**extension_suppliers(cluster, added, _added_file), **suppliers(cluster, passthrough)}
    # An extension rendering ExternalSecrets (credentials) that supplies no ExternalSecret for a
    # Secret the operator generates has left it to the operator: say so, it is the repository's choice.
    suppliers_on = [e.extension.name for e in cluster.extensions if any(o.kind == "ExternalSecret" for o in e.extension.objects)]
    return [
        {
            **s,
            "suppliedBy": supplied.get(s["name"]),
            "leftToOperatorBy": suppliers_on if s["operatorGenerates"] and s["name"] not in supplied else [],
        }
        for s in ProviderRenderer(cluster.provider).required_secrets(cluster)
    ]


def explain_text(cluster: ResolvedCluster, catalog: Catalog | None, passthrough: Sequence[PassthroughObject] = ()) -> str:
    data = explain_json(cluster, catalog, passthrough)
    provider, definition = data["provider"], data["definition"]
    lines = [
        f"cluster:    {data['cluster']}  ({data['source']})",
        f"provider:   {provider['name']} ({provider['source']}{', replaces the built-in' if provider['replacesBuiltin'] else ''})"
        f" -> {provider['operator']['name']} {provider['operator']['version']}"
        + (f" ({provider['operator']['release']})" if len(provider["operator"]["releases"]) > 1 else ""),
        f"definition: {definition['name']} ({definition['source']}{', replaces the built-in' if definition['replacesBuiltin'] else ''})",
        f"topology:   {data['topology']['type']}" + (f" {yaml_value(data['topology']['config'])}" if data["topology"]["config"] else ""),
        f"crVersion:  {data['crVersion']}",
        f"secrets:    {data['secretsName']} (not rendered: the operator creates it, or you supply it)",
    ]
    gitops = data["gitops"]
    protection, keep = gitops["deletionProtection"], gitops["keepVolumes"]
    lines.append(f"deletion protection: {protection['level']} ({protection['origin']}){_protection_effect(protection['level'])}")
    if keep["enabled"]:
        lines.append(f"keep volumes: finalizers {', '.join(keep['finalizersDropped']) or '(none)'} dropped ({keep['origin']})")
    if gitops["annotations"]:
        lines.append("annotations on every object:")
        lines.extend(f"  {key}: {value}" for key, value in gitops["annotations"].items())
    lines.append("components:")
    for name, c in data["components"].items():
        lines.append(f"  {name}: {c['type']} {c['version']}  image {c['image']}")
        for key in ("replicas", "resources", "storage", "expose"):
            if c[key] not in (None, {}):
                lines.append(f"    {key}: {yaml_value(c[key])}")
        if c["config"] is not None:
            lines.extend(_config_lines(c["config"]))
    backup = data["backup"]
    if backup["schedules"] or backup["pitr"]:
        lines.append(f"backup:     path prefix {backup['pathPrefix']}")
        for s in backup["schedules"]:
            keep = "no retention limit" if s["retentionCopies"] is None else f"keep {s['retentionCopies']}"
            state = "" if s["enabled"] else ", disabled: checked, not rendered"
            lines.append(f"  schedule {s['name']}: {s['schedule']} -> {s['backupStorage']} ({keep}{state})")
        if backup["pitr"]:
            pitr = backup["pitr"]
            every = "" if pitr["uploadIntervalSec"] is None else f", upload every {pitr['uploadIntervalSec']} s"
            lines.append(f"  pitr: {'enabled' if pitr['enabled'] else 'disabled'} -> {yaml_value(pitr['backupStorage'])}{every}")
    if data["monitoring"]:
        m = data["monitoring"]
        lines.append(f"monitoring: {m['monitoringConfig']} -> {m['serverHost']} (image {m['image']})")
    lines.append("secrets this cluster needs (never rendered):")
    for secret in data["secrets"]:
        who = f"supplied by {secret['suppliedBy']}" if secret["suppliedBy"] else f"created by {secret['createdBy']}"
        if secret["leftToOperatorBy"]:
            who += f" (left to the operator by extension {', '.join(secret['leftToOperatorBy'])})"
        lines.append(f"  {secret['name']}: keys {', '.join(secret['keys'])}; {who}")
    if data["bundle"]:
        lines.append(f"bundle:     {data['bundle']['name']} ({data['bundle']['origin']})")
    extensions = data["extensions"]
    if extensions["applied"] or extensions["skipped"]:
        lines.append("extensions:")
    for entry in extensions["applied"]:
        objects = ", ".join(f"{o['kind']} {o['name']} ({o['file']})" for o in entry["objects"]) or "nothing"
        lines.append(f"  {entry['name']} ({entry['source']}, order {entry['order']}): adds {objects}")
    for entry in extensions["skipped"]:
        lines.append(f"  {entry['name']}: not applied: {entry['why']}")
    lines.append("versions:")
    lines.extend(
        f"  {t}: {v['version']}  ({v['image']})  <- {_source_note(data['versionSources'][t])}" for t, v in data["versions"].items()
    )
    lines.append("defaults applied:")
    lines.extend(f"  {d['path']} = {yaml_value(d['value'])}  <- {d['origin']}" for d in data["defaults"])
    return "\n".join(lines) + "\n"


def yaml_value(value: Any) -> str:
    """One value as YAML writes it on one line: ``{cpu: '1'}``, ``true``, ``null``, ``"a\\nb"``
    (what the user writes in the cluster file, not Python's repr)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _config_lines(config: Any) -> list[str]:
    """A component's configuration: text (the engine's own file format) as a literal block."""
    if isinstance(config, str) and "\n" in config.strip("\n"):
        body = textwrap.dedent(config.strip("\n"))
        return ["    config: |", *(f"      {line}".rstrip() for line in body.splitlines())]
    return [f"    config: {yaml_value(config)}"]


def _protection_effect(level: str) -> str:
    effects = {
        "confirm": ": Argo CD prunes or deletes it only when confirmed; Flux never prunes it",
        "strict": ": Argo CD never prunes or deletes it; Flux never prunes it",
    }
    return effects.get(level, ": Argo CD and Flux prune it when it leaves git")


def providers_json(catalog: Catalog) -> list[dict[str, Any]]:
    listing = []
    for name in sorted(catalog.providers):
        provider = catalog.providers[name]
        definition = catalog.definitions[provider.definition]
        listing.append(
            {
                "name": name,
                "source": _origin(provider),
                "replacesBuiltin": f"Provider/{name}" in catalog.replaced,
                "operator": {
                    "name": provider.operator_name,
                    "version": provider.operator_version,
                    "release": provider.release_origin,
                    "releases": [{"version": r.version, "preview": r.preview} for r in provider.releases],
                },
                "definition": definition.name,
                "topologies": {
                    t.name: {"default": t.default, "components": {c.name: {"optional": c.optional} for c in t.components.values()}}
                    for t in definition.topologies.values()
                },
                "componentTypes": {
                    ct.name: [_catalogue_entry(v) for v in ct.versions]
                    for ct in definition.component_types.values()
                },
                "celRules": {o.kind: inventory(json.loads(provider.assets.schemas[o.schema_file])) for o in provider.objects},
            }
        )
    return listing


def _catalogue_entry(v: CatalogueVersion) -> dict[str, Any]:
    return {"version": v.version, "image": v.image, "default": v.default, "source": v.source, "addedByRepository": v.added_by_repository}


def _version_note(version: dict[str, Any]) -> str:
    notes = ["default"] if version["default"] else []
    if version["addedByRepository"]:
        notes.append(f"added by the repository, {version['source']}")
    return f" ({'; '.join(notes)})" if notes else ""


def providers_text(catalog: Catalog) -> str:
    lines = []
    for entry in providers_json(catalog):
        note = ", replaces the built-in" if entry["replacesBuiltin"] else ""
        operator = f"{entry['operator']['name']} {entry['operator']['version']}"
        lines.append(f"{entry['name']} ({entry['source']}{note}): {operator}, definition {entry['definition']}")
        releases = entry["operator"]["releases"]
        if len(releases) > 1:
            shown = ", ".join(r["version"] + (" (preview)" if r["preview"] else "") for r in releases)
            lines.append(f"  operator releases: {shown}; in effect {entry['operator']['version']} ({entry['operator']['release']})")
        for topology, info in entry["topologies"].items():
            parts = [c + (" (optional)" if o["optional"] else "") for c, o in info["components"].items()]
            lines.append(f"  topology {topology}{' (default)' if info['default'] else ''}: {', '.join(parts)}")
        for type_name, versions in entry["componentTypes"].items():
            shown = ", ".join(v["version"] + _version_note(v) for v in versions)
            lines.append(f"  {type_name}: {shown}")
        for kind, rules in entry["celRules"].items():
            skipped = rules["notChecked"]
            lines.append(f"  {kind} CEL rules: {rules['checked']} checked" + (f", {len(skipped)} not checked:" if skipped else ""))
            lines.extend(f"    {r['at']}: {r['rule']} ({r['why']})" for r in skipped)
    return "\n".join(lines) + "\n"
