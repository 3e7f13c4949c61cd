"""Read the live counterparts of rendered objects from the cluster (for `diff --live`).

kr8s is imported here only: it costs ~0.3 s and the render path never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from everest_render.diff import ObjectKey, object_key


class LiveError(Exception):
    """The cluster could not be reached or read."""


def read_live_objects(objects: Iterable[Mapping[str, Any]]) -> dict[ObjectKey, Any]:
    """The live object for each rendered one that exists (missing ones are simply absent)."""
    try:
        import kr8s
        from kr8s.objects import new_class
    except ImportError as error:  # pragma: no cover - kr8s is a dependency
        raise LiveError(f"kr8s is not installed: {error}") from error
    try:
        api = kr8s.api()
    except Exception as error:
        raise LiveError(f"cannot reach the cluster: {error}") from error
    found: dict[ObjectKey, Any] = {}
    for obj in objects:
        key = object_key(obj)
        api_version, kind, namespace, name = key
        resource = new_class(kind=kind, version=api_version, namespaced=True)
        try:
            live = resource.get(name, namespace=namespace, api=api)
        except kr8s.NotFoundError:
            continue
        except Exception as error:
            raise LiveError(f"cannot read {kind} {namespace}/{name}: {error}") from error
        found[key] = live.raw
    return found
