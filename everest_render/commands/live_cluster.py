"""Read the live counterparts of rendered objects from the cluster (for `diff --live`).

One GET per object on its own URL (a 404 means "not there yet": no list-and-wait), the
resource's plural name taken from API discovery (once per group/version), through kr8s's
authenticated client. kr8s is imported here only: it costs ~0.3 s and rendering never needs it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any

from everest_render.commands.diff import ObjectKey, object_key


class LiveError(Exception):
    """The cluster could not be reached or read."""


def read_live_objects(objects: Iterable[Mapping[str, Any]]) -> dict[ObjectKey, Any]:
    """The live object for each rendered one that exists (missing ones are simply absent)."""
    return asyncio.run(_read_all([object_key(obj) for obj in objects]))


async def _read_all(keys: list[ObjectKey]) -> dict[ObjectKey, Any]:
    try:
        import kr8s.asyncio
    except ImportError as error:  # pragma: no cover - kr8s is a dependency
        raise LiveError(f"kr8s is not installed: {error}") from error
    try:
        api = await kr8s.asyncio.api()
    except Exception as error:
        raise LiveError(f"cannot reach the cluster: {error}") from error
    plurals: dict[str, dict[str, str]] = {}
    found: dict[ObjectKey, Any] = {}
    for key in keys:
        api_version, kind, namespace, name = key
        if api_version not in plurals:
            plurals[api_version] = await _discover(api, api_version)
        plural = plurals[api_version].get(kind)
        if plural is None:
            raise LiveError(f"the cluster serves no {kind} in {api_version} (is the operator's CRD installed?)")
        body = await _get(api, api_version, namespace, f"{plural}/{name}")
        if body is not None:
            found[key] = body
    return found


async def _discover(api: Any, api_version: str) -> dict[str, str]:
    """kind -> plural resource name, from the group/version's discovery document."""
    group, _, version = api_version.rpartition("/")
    # /apis/<group>/<version> (or /api/v1), spelled so that no trailing slash is added.
    body = await _get(api, group, None, version, base="/apis" if group else "/api")
    if body is None:
        return {}
    return {r["kind"]: r["name"] for r in body.get("resources", []) if "/" not in r["name"]}


async def _get(api: Any, api_version: str, namespace: str | None, url: str, base: str = "") -> Any:
    try:
        async with api.call_api("GET", version=api_version, base=base, namespace=namespace, url=url, raise_for_status=False) as response:
            if response.status_code == 404:
                return None
            if response.is_error:
                raise LiveError(f"GET {response.request.url.path}: HTTP {response.status_code}")
            return json.loads(response.content)
    except LiveError:
        raise
    except Exception as error:
        raise LiveError(f"cannot read {api_version} {url or '(discovery)'}: {error}") from error
