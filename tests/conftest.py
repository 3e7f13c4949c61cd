"""Test harness: a throw-away GitOps repository with inline files (kustomize's `th`, in pytest).

`Repo` is the package's own harness (everest_render/testing.py), the one providers' authors use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from everest_render.testing import Repo

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_render_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands the suite runs (in-process or not) share one render cache of their own, never
    the developer's ~/.cache: the cache is exercised by every CLI test, and outputs must not
    change because of it."""
    before = os.environ.get("EVEREST_RENDER_CACHE")
    os.environ["EVEREST_RENDER_CACHE"] = str(tmp_path_factory.mktemp("render-cache"))
    yield
    if before is None:
        os.environ.pop("EVEREST_RENDER_CACHE", None)
    else:
        os.environ["EVEREST_RENDER_CACHE"] = before


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def mongodb(name: str = "orders", namespace: str = "shop", body: str = "  instances:\n    engine: {}\n") -> str:
    """A PSMDB DatabaseCluster; ``body`` is the rest of ``spec`` (indented two spaces)."""
    return (
        "apiVersion: everest.percona.com/v2alpha1\n"
        "kind: DatabaseCluster\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        "spec:\n"
        "  provider: percona-server-mongodb\n" + body
    )
