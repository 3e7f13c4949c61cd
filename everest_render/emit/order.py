"""The one canonical order of rendered objects (Helm's install order, Tanka's total order).

Objects sort by namespace, cluster name, kind rank, kind, apiVersion, then name, so the
output is the same whatever order files were read in. Unknown kinds go after known ones,
alphabetically. No option changes this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Dependencies first: what a database CR refers to exists before it.
KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "Secret",
    "SealedSecret",
    "ExternalSecret",
    "ConfigMap",
    "PerconaServerMongoDB",
    "PerconaXtraDBCluster",
    "PerconaPGCluster",
    "Cluster",
    "Pooler",
    "ScheduledBackup",
)
_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}


def object_sort_key(namespace: str, cluster: str, obj: Mapping[str, Any]) -> tuple[str, str, int, str, str, str]:
    kind = str(obj.get("kind", ""))
    metadata = obj.get("metadata") or {}
    return (
        namespace,
        cluster,
        _RANK.get(kind, len(KIND_ORDER)),
        kind,
        str(obj.get("apiVersion", "")),
        str(metadata.get("name", "")),
    )
