"""Which pass-through object supplies which Secret, and which selection owns each one.

A cluster's Secrets (its provider's ``spec.secrets``, as `explain` lists them) are never
rendered; under ``clusters/`` the user may supply them as a SOPS-encrypted Secret, a
SealedSecret or an ExternalSecret, which are passed through. When applications select clusters
one by one (``--only NAMESPACE/NAME``), every pass-through object must belong to exactly one of
them, or deleting one application prunes what another needs. The rule (docs/gitops.md):

- an object that supplies a Secret only one cluster of its namespace needs goes with that
  cluster (``--only NAMESPACE/NAME``);
- every other pass-through object, a Namespace, a Secret several clusters share, a ConfigMap,
  belongs to the namespace's shared selection, ``--only NAMESPACE/_shared`` (``_`` cannot start
  a cluster name);
- ``--only NAMESPACE`` (and no ``--only``) holds all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from everest_render.diagnostics import Diagnostic
from everest_render.model import PassthroughObject, RenderedObject, ResolvedCluster

SHARED = "_shared"  # the selection name of a namespace's shared pass-through objects


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _target_of(external_secret: Mapping[str, Any]) -> Any:
    """The Secret an ExternalSecret writes: its spec.target.name, else its own name."""
    target = _mapping(_mapping(external_secret.get("spec")).get("target")).get("name")
    return target or _mapping(external_secret.get("metadata")).get("name")


def supplied_secret(item: PassthroughObject) -> str | None:
    """The name of the Secret ``item`` creates, for the kinds that create one."""
    data = item.document.data
    kind, api_version = data.get("kind"), str(data.get("apiVersion", ""))
    name = _mapping(data.get("metadata")).get("name")
    spec = _mapping(data.get("spec"))
    if kind == "Secret" and api_version == "v1":
        found = name
    elif kind == "SealedSecret" and api_version.startswith("bitnami.com/"):
        found = _mapping(_mapping(spec.get("template")).get("metadata")).get("name") or name
    elif kind == "ExternalSecret" and api_version.startswith("external-secrets.io/"):
        found = _target_of(data)
    else:
        return None
    return found if isinstance(found, str) else None


def describe(item: PassthroughObject) -> str:
    """``ExternalSecret shop/orders-users (clusters/shop/secrets.yaml)``; SOPS files say so."""
    data = item.document.data
    metadata = _mapping(data.get("metadata"))
    kind = ("SOPS-encrypted " if item.encrypted else "") + str(data.get("kind"))
    return f"{kind} {item.namespace}/{metadata.get('name')} ({item.document.source.path})"


def owners(clusters: Iterable[ResolvedCluster], passthrough: Iterable[PassthroughObject]) -> dict[int, str]:
    """For each pass-through object (by ``id``), the name of the cluster that owns it, or
    ``_shared``."""
    from everest_render.render.templates import ProviderRenderer

    needers: dict[tuple[str, str], set[str]] = defaultdict(set)  # (namespace, secret) -> clusters
    renderers: dict[int, ProviderRenderer] = {}  # each provider compiled once, not once a cluster
    for cluster in clusters:
        renderer = renderers.get(id(cluster.provider))
        if renderer is None:
            renderer = renderers[id(cluster.provider)] = ProviderRenderer(cluster.provider)
        for secret in renderer.required_secrets(cluster):
            needers[(cluster.ref.namespace, secret["name"])].add(cluster.ref.name)
    found: dict[int, str] = {}
    for item in passthrough:
        supplied = supplied_secret(item)
        who = needers.get((item.namespace, supplied), set()) if supplied is not None else set()
        found[id(item)] = min(who) if len(who) == 1 else SHARED
    return found


def suppliers(cluster: ResolvedCluster, passthrough: Iterable[PassthroughObject]) -> Mapping[str, str]:
    """Secret name -> the pass-through object of the cluster's namespace that supplies it."""
    supplied: dict[str, str] = {}
    for item in passthrough:
        secret = supplied_secret(item)
        if item.namespace == cluster.ref.namespace and secret is not None:
            supplied.setdefault(secret, describe(item))
    return supplied



def extension_suppliers(
    cluster: ResolvedCluster, added: Iterable[RenderedObject], file_of: Callable[[ResolvedCluster, RenderedObject], str]
) -> Mapping[str, str]:
    """Secret name -> the ExternalSecret an extension renders for it (the credentials
    extension): which keys come from the store, and whether the Secret is the ExternalSecret's
    or the operator's (creationPolicy Merge: it adds keys to the Secret the operator creates)."""
    supplied: dict[str, str] = {}
    for rendered in added:
        data = rendered.obj
        if data.get("kind") != "ExternalSecret" or not str(data.get("apiVersion", "")).startswith("external-secrets.io/"):
            continue
        spec = _mapping(data.get("spec"))
        target = _mapping(spec.get("target"))
        name = _target_of(data)
        keys = [str(_mapping(item).get("secretKey")) for item in spec.get("data") or [] if isinstance(item, Mapping)]
        how = POLICY_WORDS.get(str(target.get("creationPolicy")), "")
        own = _mapping(data.get("metadata")).get("name")
        where = f"ExternalSecret {cluster.ref.namespace}/{own} (extension {rendered.extension}, {file_of(cluster, rendered)})"
        if isinstance(name, str):
            supplied.setdefault(name, f"{where}: {', '.join(keys) or 'every key'} from the store{how}")
    return supplied


# What each ExternalSecret creationPolicy means for who writes the Secret (docs/extensions.md).
POLICY_WORDS = {
    "Merge": ", merged into the Secret the operator creates; its other keys are the operator's",
    "CreateOrMerge": ", created before the database if missing; the keys the operator writes stay the operator's",
    "Orphan": "",
}


@dataclass(frozen=True)
class ExtensionSupply:
    """A Secret an extension's ExternalSecret supplies: what the check across clusters
    (`double_supply_problems`) keeps of the ExternalSecret once its bytes are emitted."""

    namespace: str
    secret: str  # the Secret's name: the ExternalSecret's target, or its own name
    extension: str
    name: str  # the ExternalSecret's own name


def extension_supplies(objects: Iterable[RenderedObject]) -> tuple[ExtensionSupply, ...]:
    """The Secrets the extensions' ExternalSecrets among ``objects`` supply."""
    found = []
    for rendered in objects:
        data = rendered.obj
        if rendered.extension is None or data.get("kind") != "ExternalSecret":
            continue
        metadata = _mapping(data.get("metadata"))
        found.append(ExtensionSupply(str(metadata.get("namespace")), str(_target_of(data)), rendered.extension, str(metadata.get("name"))))
    return tuple(found)


def double_supply_problems(supplies: Iterable[ExtensionSupply], passthrough: Iterable[PassthroughObject]) -> list[Diagnostic]:
    """A Secret that an extension's ExternalSecret supplies and a pass-through object (a SOPS
    Secret, a SealedSecret, an ExternalSecret) supplies too: the two would overwrite each other's
    values, so the pass-through object is refused, naming the other supplier."""
    by_secret: dict[tuple[str, str], ExtensionSupply] = {}
    for supply in supplies:
        by_secret.setdefault((supply.namespace, supply.secret), supply)
    problems = []
    for item in passthrough:
        secret = supplied_secret(item)
        other = by_secret.get((item.namespace, str(secret)))
        if secret is None or other is None:
            continue
        message = (
            f"Secret {item.namespace}/{secret} is supplied twice: by this object and by extension {other.extension}'s "
            f"ExternalSecret {item.namespace}/{other.name}; keep one (remove this object, or opt the clusters out of the extension)"
        )
        problems.append(item.document.at(("metadata", "name"), message))
    return problems
