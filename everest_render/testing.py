"""Testing a repository or a provider: a throw-away repository harness and provider case files.

Like kustomize's ``kusttest``, the package ships what its own tests use, so a provider's
author tests it the same way. `Repo` is a repository with inline files, rendered in-process::

    repo = Repo(tmp_path)
    repo.write("clusters/db.yaml", "...")
    assert repo.errors() == ["clusters/db.yaml:9:14: unknown field 'replicaz' (at spec.instances.engine.replicaz)"]

A provider folder may carry case files, ``providers/<name>/cases/*.yaml``, one case each::

    case: expose on the engine is refused         # what the case shows
    files:                                        # written into a throw-away repository that
      clusters/c.yaml: |                          # holds the provider's repository's definitions/
        apiVersion: everest.percona.com/v2alpha1  # and providers/ (the built-ins need no copy)
        ...
    errors:                                       # the exact error lines, in order; or
      - "clusters/c.yaml:7:14: expose is not allowed on 'engine': ..."
    stream: |                                     # the exact `render --stdout` text (plus, if
      ---                                         # given, `warnings:` lines)
      ...

`provider_cases(root)` finds them; `run_case(case, scratch)` returns what differs (nothing when
the case holds). The package's pytest plugin (everest_render.pytest_plugin, loaded by pytest once
the package is installed) collects every ``providers/*/cases/*.yaml`` it is pointed at, one
test per file, and adds fixtures for a repository's own tests (docs/testing.md).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from everest_render.diagnostics import Diagnostic
from everest_render.load.files import builtin_root
from everest_render.model import ResolvedCluster
from everest_render.pipeline import read_repository, render_repository, resolve_repository
from everest_render.results import RenderResult

CASE_FIELDS = {"case", "files", "errors", "warnings", "stream"}


class Repo:
    """A GitOps repository in a folder, written file by file and rendered in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
        return target

    def result(self) -> RenderResult:
        return render_repository(read_repository(self.root), keep_objects=True)

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.result().diagnostics

    def errors(self) -> list[str]:
        return [str(d) for d in self.diagnostics() if d.is_error]

    def warnings(self) -> list[str]:
        return [str(d) for d in self.diagnostics() if not d.is_error]

    def objects(self) -> list[dict[str, Any]]:
        result = self.result()
        assert not result.failed, [str(d) for d in result.diagnostics]
        return [dict(o.obj) for o in result.objects]

    def only_object(self) -> dict[str, Any]:
        (obj,) = self.objects()
        return obj

    def stream(self) -> list[Any]:
        result = self.result()
        assert not result.failed, [str(d) for d in result.diagnostics]
        return list(yaml.safe_load_all(result.plan.stream()))

    def resolved(self) -> tuple[ResolvedCluster, ...]:
        result = resolve_repository(read_repository(self.root))
        assert not result.failed, [str(d) for d in result.diagnostics]
        return result.clusters


# --- provider case files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One case file: the files of a repository beside a provider, and what rendering gives."""

    path: Path
    name: str
    provider_root: Path  # the repository whose definitions/ and providers/ the case uses
    files: Mapping[str, str]
    errors: tuple[str, ...] | None
    warnings: tuple[str, ...]
    stream: str | None


def provider_cases(root: Path) -> list[Case]:
    """Every ``providers/*/cases/*.yaml`` and ``extensions/*/cases/*.yaml`` of the repository
    at ``root``, sorted by path (an extension's cases are run the same way)."""
    found = [*root.glob("providers/*/cases/*.yaml"), *root.glob("extensions/*/cases/*.yaml")]
    return [read_case(path) for path in sorted(found)]


def read_case(path: Path) -> Case:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict) or set(data) - CASE_FIELDS:
        raise ValueError(f"{path}: a case is a mapping of {', '.join(sorted(CASE_FIELDS))} with files")
    if ("errors" in data) == ("stream" in data):
        raise ValueError(f"{path}: a case expects either errors or a stream")
    errors = tuple(data["errors"]) if "errors" in data else None
    warnings = tuple(data.get("warnings", []))
    return Case(path, str(data.get("case", path.stem)), path.parents[3], data["files"], errors, warnings, data.get("stream"))


def run_case(case: Case, scratch: Path) -> list[str]:
    """Render ``case`` in the empty folder ``scratch``; what differs from its expectation."""
    if case.provider_root.resolve() != builtin_root().resolve():
        for folder in ("definitions", "providers", "extensions"):
            if (case.provider_root / folder).is_dir():
                shutil.copytree(case.provider_root / folder, scratch / folder, ignore=shutil.ignore_patterns("cases"))
    repo = Repo(scratch)
    for name, text in case.files.items():
        repo.write(name, text)
    result = repo.result()
    errors = [str(d) for d in result.diagnostics if d.is_error]
    warnings = [str(d) for d in result.diagnostics if not d.is_error]
    differences = []
    if case.errors is not None and errors != list(case.errors):
        differences.append(_expected("errors", list(case.errors), errors))
    if case.errors is None and errors:
        differences.append(_expected("no errors", [], errors))
    if warnings != list(case.warnings):
        differences.append(_expected("warnings", list(case.warnings), warnings))
    if case.stream is not None and not errors and result.plan.stream().decode() != case.stream:
        differences.append(_expected("stream", case.stream.splitlines(), result.plan.stream().decode().splitlines()))
    return differences


def _expected(what: str, expected: list[str], actual: list[str]) -> str:
    def block(lines: list[str]) -> str:
        return textwrap.indent("\n".join(lines) or "(none)", "  ")

    return f"{what}: expected\n{block(expected)}\ngot\n{block(actual)}"
