"""The pytest plugin: test a GitOps repository and its providers the way this project tests its own.

Installed with the package (entry point ``pytest11``), so ``pip install 'everest-render[testing]'``
is all a team needs. Importing it costs nothing: the renderer and syrupy are imported by the
fixtures that use them, and a missing syrupy fails only the test that asks for a snapshot.

Fixtures (docs/testing.md):

- ``everest_repo``: the repository under test; the ini option ``everest_render_repo``
  (relative to the rootdir), else the rootdir. Override the fixture to point elsewhere.
- ``everest_rendered``: the repository rendered in-process (session-scoped): ``files``
  (``out/`` path -> text), ``objects``, ``errors``, ``warnings``.
- ``everest_snapshot``: syrupy's ``snapshot``, one ``.yaml`` file per assertion, so each
  cluster's output file is its own reviewable snapshot (``--snapshot-update`` rewrites them).
- ``everest_crd_check``: ``check(*paths)`` validates every rendered object against the CRDs in
  the files or folders given, strictly (unknown fields are errors), and returns the problems.
- ``everest_scratch``: a throw-away repository holding a copy of the repository's
  ``definitions/`` and ``providers/``: write a cluster, assert ``errors()`` or ``objects()``.

``cluster_files(repo)`` lists the output files for ``pytest.mark.parametrize``. Case files,
``providers/<name>/cases/*.yaml``, are collected as tests wherever pytest is pointed at them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from everest_render.testing import Repo

SNAPSHOT_HINT = "everest_snapshot needs syrupy: pip install 'everest-render[testing]'"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("everest_render_repo", "the GitOps repository everest-render's fixtures render (default: the rootdir)", default="")


@dataclass(frozen=True)
class Rendered:
    """A repository as `everest-render render` would write it, without writing anything."""

    files: dict[str, str]  # out/ path -> text
    objects: tuple[dict[str, Any], ...]  # every object of every file, in file order
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def file(self, path: str) -> str:
        """One output file's text; a clear failure when the render failed or has no such file."""
        if self.errors:
            pytest.fail("the repository does not render:\n" + "\n".join(self.errors), pytrace=False)
        if path not in self.files:
            pytest.fail(f"no output file {path}; the render has: {', '.join(sorted(self.files)) or 'none'}", pytrace=False)
        return self.files[path]


def render(repo: Path) -> Rendered:
    """Render the repository at ``repo`` in-process (``everest_rendered`` keeps one per session)."""
    import yaml

    from everest_render.pipeline import read_repository, render_repository

    result = render_repository(read_repository(repo))
    files = {path: data.decode("utf-8") for path, data in sorted(result.plan.files.items())}
    objects: list[dict[str, Any]] = []
    for path, text in files.items():
        if path.endswith((".yaml", ".yml")):
            try:
                objects.extend(d for d in yaml.safe_load_all(text) if isinstance(d, dict))
            except yaml.YAMLError:  # a SOPS file copied byte for byte may not be plain YAML
                continue
    return Rendered(
        files,
        tuple(objects),
        tuple(str(d) for d in result.diagnostics if d.is_error),
        tuple(str(d) for d in result.diagnostics if not d.is_error),
    )


def cluster_files(repo: Path | str) -> list[Any]:
    """The output files of ``repo`` (``<namespace>/<cluster>.yaml``) for parametrize, each with
    the id ``<namespace>-<cluster>`` (a snapshot file name holds no ``/``)."""
    paths = [path for path in render(Path(repo).resolve()).files if path.endswith(".yaml") and "/" in path]
    return [pytest.param(path, id=path.removesuffix(".yaml").replace("/", "-")) for path in paths]


# --- CRD validation -----------------------------------------------------------------------------


def crd_problems(objects: tuple[dict[str, Any], ...] | list[dict[str, Any]], crd_paths: tuple[Path, ...]) -> list[str]:
    """Every object checked against the strict schema of its CRD among ``crd_paths`` (files or
    folders of YAML); an object of a group no CRD covers is a problem, core ``v1`` kinds are not."""
    import yaml

    from everest_render.authoring.crd_schema import strict_schema_from_crd
    from everest_render.check.cel_rules import RULES_KEY
    from everest_render.diagnostics import format_path
    from everest_render.schema_check import compile_schema, schema_problems

    schemas: dict[tuple[str, str], Any] = {}
    for path in _yaml_files(crd_paths):
        for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                schema = strict_schema_from_crd(crd, version["name"])
                schema.pop(RULES_KEY, None)
                schemas[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = compile_schema(schema)
    problems = []
    for obj in objects:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        metadata = obj.get("metadata") or {}
        name = f"{kind} {metadata.get('namespace', '')}/{metadata.get('name', '')}".replace(" /", " ")
        validator = schemas.get((api_version, kind))
        if validator is None:
            if "/" in api_version:  # core kinds (v1 Namespace, ConfigMap, ...) have no CRD
                problems.append(f"{name}: no CRD given for {api_version} {kind}")
            continue
        for problem in schema_problems(validator, obj):
            problems.append(f"{name}: {problem.message} (at {format_path(problem.path) or '(root)'})")
    return problems


def _yaml_files(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no CRD file or folder {path}")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def everest_repo(request: pytest.FixtureRequest) -> Path:
    configured = request.config.getini("everest_render_repo")
    root = Path(request.config.rootpath)
    return (root / configured).resolve() if configured else root.resolve()


@pytest.fixture(scope="session")
def everest_rendered(everest_repo: Path) -> Rendered:
    return render(Path(everest_repo).resolve())


@pytest.fixture
def everest_snapshot(request: pytest.FixtureRequest) -> Any:
    try:
        from syrupy.extensions.single_file import SingleFileSnapshotExtension
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:
        pytest.fail(SNAPSHOT_HINT, pytrace=False)  # outside the except: no chained ImportError

    class ManifestSnapshot(SingleFileSnapshotExtension):
        """One `.yaml` file per snapshot: a cluster's output as it is in out/."""

        file_extension = "yaml"

        def serialize(self, data: Any, **kwargs: Any) -> bytes:
            return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    return request.getfixturevalue("snapshot").use_extension(ManifestSnapshot)


@pytest.fixture
def everest_crd_check(everest_rendered: Rendered) -> Callable[..., list[str]]:
    def check(*crd_paths: Path | str) -> list[str]:
        if everest_rendered.errors:
            pytest.fail("the repository does not render:\n" + "\n".join(everest_rendered.errors), pytrace=False)
        return crd_problems(everest_rendered.objects, tuple(Path(p) for p in crd_paths))

    return check


@pytest.fixture
def everest_scratch(everest_repo: Path, tmp_path: Path) -> Repo:
    from everest_render.testing import Repo

    for folder in ("definitions", "providers", "extensions"):
        if (everest_repo / folder).is_dir():
            shutil.copytree(everest_repo / folder, tmp_path / folder, ignore=shutil.ignore_patterns("cases"))
    return Repo(tmp_path)


# --- case files ----------------------------------------------------------------------------------


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield CaseItem.from_parent(self, name=self.path.stem)


class CaseItem(pytest.Item):
    def runtest(self) -> None:
        import tempfile

        from everest_render.testing import read_case, run_case

        with tempfile.TemporaryDirectory(prefix="everest-case-") as scratch:
            differences = run_case(read_case(self.path), Path(scratch))
        if differences:
            raise AssertionError("\n".join(differences))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"case {self.path.name}"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> CaseFile | None:
    parts = file_path.parts
    if file_path.suffix == ".yaml" and len(parts) >= 4 and parts[-2] == "cases" and parts[-4] in ("providers", "extensions"):
        return CaseFile.from_parent(parent, path=file_path)
    return None
