"""Test harness: a throw-away GitOps repository with inline files (kustomize's `th`, in pytest)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from everest_render.diagnostics import Diagnostic
from everest_render.pipeline import RenderResult, read_repository, render_repository, resolve_repository

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
        return target

    def result(self) -> RenderResult:
        return render_repository(read_repository(self.root))

    def diagnostics(self) -> list[Diagnostic]:
        return self.result().diagnostics

    def errors(self) -> list[str]:
        return [str(d) for d in self.diagnostics() if d.is_error]

    def warnings(self) -> list[str]:
        return [str(d) for d in self.diagnostics() if not d.is_error]

    def objects(self) -> list[dict]:
        result = self.result()
        assert not result.failed, [str(d) for d in result.diagnostics]
        return [dict(o.obj) for o in result.objects]

    def only_object(self) -> dict:
        (obj,) = self.objects()
        return obj

    def stream(self) -> list[dict]:
        result = self.result()
        assert not result.failed, [str(d) for d in result.diagnostics]
        return list(yaml.safe_load_all(result.plan.stream()))

    def resolved(self):
        result = resolve_repository(read_repository(self.root))
        assert not result.failed, [str(d) for d in result.diagnostics]
        return result.clusters


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
