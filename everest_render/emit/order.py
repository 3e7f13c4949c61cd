"""The one canonical order of rendered objects (Helm's install order, Tanka's total order).

Objects sort by namespace, cluster name, kind rank, kind, apiVersion, then name, so the
output is the same whatever order files were read in. The Kubernetes API kinds a database
refers to come first; then the provider's own kinds in the order its ``kindOrder`` gives;
any other kind after those, alphabetically. No option changes this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Dependencies first: what a database CR refers to exists before it.
API_KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "Secret",
    "SealedSecret",
    "ExternalSecret",
    "ConfigMap",
)
_RANK = {kind: rank for rank, kind in enumerate(API_KIND_ORDER)}


def object_sort_key(
    namespace: str, cluster: str, obj: Mapping[str, Any], kind_order: Sequence[str] = ()
) -> tuple[str, str, int, str, str, str]:
    """The sort key of ``obj`` in ``cluster``'s file; ``kind_order`` is its provider's ``kindOrder``."""
    kind = str(obj.get("kind", ""))
    metadata = obj.get("metadata") or {}
    if kind in _RANK:
        rank = _RANK[kind]
    elif kind in kind_order:
        rank = len(API_KIND_ORDER) + kind_order.index(kind)
    else:
        rank = len(API_KIND_ORDER) + len(kind_order)
    return (namespace, cluster, rank, kind, str(obj.get("apiVersion", "")), str(metadata.get("name", "")))
