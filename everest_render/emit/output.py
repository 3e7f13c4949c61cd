"""Stage 6, emit: ordered objects -> the bytes of out/ (or of one stream), and writing them.

out/ is owned by the renderer: an index file beside the manifests (not YAML, so Argo CD
and Flux do not read it) lists what it wrote, and pruning removes only those files. All
content is built in memory first; files are written through temporary names and renamed
into place, and nothing is written when any error exists.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from everest_render.emit.order import object_sort_key
from everest_render.emit.yaml_text import dump_document
from everest_render.model import ObjectRef, PassthroughObject, RenderedObject

INDEX_FILE = ".everest-render-index"
INDEX_HEADER = "# Files under this folder written by everest-render; `render` prunes only these.\n"
PASSTHROUGH_FILE = "_passthrough.yaml"  # "_" cannot start a cluster name, so no collision
KUSTOMIZATION_FILE = "kustomization.yaml"  # only when asked for: it makes Argo CD switch to kustomize


@dataclass(frozen=True)
class OutputPlan:
    """What out/ must hold: relative path -> bytes, in path order."""

    files: Mapping[str, bytes]

    def stream(self) -> bytes:
        """Every file's documents as one YAML stream, for --stdout (files in path order).

        A file copied byte for byte (SOPS) may lack a leading ``---`` or a final newline;
        both are added so it cannot run into its neighbours."""
        parts = []
        for path in sorted(self.files):
            if path == KUSTOMIZATION_FILE:
                continue  # a build instruction, not an object
            content = self.files[path]
            if not content.startswith(b"---"):
                content = b"---\n" + content
            parts.append(content if content.endswith(b"\n") else content + b"\n")
        return b"".join(parts)


def is_sops_file(path: str) -> bool:
    return "/_sops/" in f"/{path}"


def without_sops(plan: OutputPlan) -> OutputPlan:
    """The plan minus its SOPS files (``render --stdout --sops omit``)."""
    return OutputPlan({path: text for path, text in plan.files.items() if not is_sops_file(path)})


def cluster_files(objects: Iterable[RenderedObject], kind_orders: Mapping[ObjectRef, Sequence[str]]) -> dict[str, bytes]:
    """``<namespace>/<cluster>.yaml`` for each cluster: its objects in the canonical order
    (``kind_orders``: each cluster's provider's ``kindOrder``)."""
    by_cluster: dict[ObjectRef, list[Mapping[str, Any]]] = defaultdict(list)
    for rendered in objects:
        by_cluster[rendered.cluster].append(rendered.obj)
    files: dict[str, bytes] = {}
    for ref in sorted(by_cluster):
        kind_order = kind_orders.get(ref, ())
        ordered = sorted(by_cluster[ref], key=lambda o: object_sort_key(ref.namespace, ref.name, o, kind_order))
        files[f"{ref.namespace}/{ref.name}.yaml"] = "".join(dump_document(o) for o in ordered).encode()
    return files


def passthrough_files(passthrough: Iterable[PassthroughObject]) -> dict[str, bytes]:
    """``<namespace>/_passthrough.yaml`` per namespace, and SOPS files as they are."""
    files: dict[str, bytes] = {}
    plain: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in passthrough:
        if item.encrypted:
            # SOPS: re-serialising would break the MAC, so the whole file is copied as it is.
            files[f"{item.namespace}/_sops/{item.document.source.path}"] = item.document.source.text.encode()
        else:
            plain[item.namespace].append(item.document.data)
    for namespace in sorted(plain):
        ordered = sorted(plain[namespace], key=lambda o: object_sort_key(namespace, "", o))
        files[f"{namespace}/{PASSTHROUGH_FILE}"] = "".join(dump_document(o) for o in ordered).encode()
    return files


def plan_from_files(files: Mapping[str, bytes]) -> OutputPlan:
    for path in files:
        # Defence in depth: namespaces and names were validated as RFC 1123 labels upstream.
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"refusing to write outside out/: {path}")
    return OutputPlan(dict(sorted(files.items())))


def with_kustomization(plan: OutputPlan) -> OutputPlan:
    """The plan plus an out/kustomization.yaml that lists every file as a resource, for
    `kustomize build out/` and Flux setups that want the file present rather than generated."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(path for path in plan.files if path != KUSTOMIZATION_FILE),
    }
    return OutputPlan(dict(sorted({**plan.files, KUSTOMIZATION_FILE: dump_document(kustomization).encode()}.items())))


# --- the file system side ---------------------------------------------------------------


def owned_files(out_dir: Path) -> set[str]:
    index = out_dir / INDEX_FILE
    if not index.is_file():
        return set()
    lines = index.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line and not line.startswith("#") and _inside(out_dir, line)}


def _inside(out_dir: Path, relative: str) -> bool:
    """Whether out/<relative> stays under out/ once links are followed (names never escape it)."""
    target = (out_dir / relative).resolve()
    return target.is_relative_to(out_dir.resolve()) and ".." not in Path(relative).parts


def read_output(plan: OutputPlan, out_dir: Path) -> dict[str, bytes]:
    """What out/ holds now of the files the plan writes or the renderer owns."""
    current = {}
    for path in sorted(plan.files.keys() | owned_files(out_dir)):
        target = out_dir / path
        if target.is_file():
            current[path] = target.read_bytes()
    return current


def differences(plan: OutputPlan, out_dir: Path) -> list[str]:
    """What `render` would change in out/: one line per file, sorted (for --check)."""
    changes: list[str] = []
    for path, content in plan.files.items():
        target = out_dir / path
        if not target.is_file():
            changes.append(f"missing: {path}")
        elif target.read_bytes() != content:
            changes.append(f"stale: {path}")
    for path in sorted(owned_files(out_dir) - plan.files.keys()):
        if (out_dir / path).exists():
            changes.append(f"extra: {path}")
    index = _read(out_dir / INDEX_FILE)
    if plan.files and _index_text(plan) != index:
        changes.append(f"{'missing' if index is None else 'stale'}: {INDEX_FILE}")
    return changes


class OutputError(Exception):
    """out/ cannot be written as planned (e.g. a symbolic link leads out of it)."""


@dataclass(frozen=True)
class WriteCounts:
    """What a write did to the plan's files (the index is not counted), for the summary line."""

    written: int
    unchanged: int
    removed: int


def write_output(plan: OutputPlan, out_dir: Path) -> WriteCounts:
    """Bring out/ to exactly ``plan``: changed files replaced atomically, owned leftovers pruned.

    Every target is checked before anything is written: a symbolic link under out/ that leads
    outside it stops the whole write."""
    escaping = [path for path in [*plan.files, INDEX_FILE] if not _inside(out_dir, path)]
    if escaping:
        raise OutputError(f"refusing to write outside {out_dir}: {', '.join(sorted(escaping))} (a symbolic link?)")
    previous = owned_files(out_dir)
    unchanged = removed = 0
    for path, content in plan.files.items():
        target = out_dir / path
        if target.is_file() and target.read_bytes() == content:
            unchanged += 1
            continue
        _write_atomically(target, content)
    for path in sorted(previous - plan.files.keys()):
        target = out_dir / path
        if target.is_file():
            target.unlink()
            removed += 1
            _remove_empty_parents(target.parent, out_dir)
    _write_atomically(out_dir / INDEX_FILE, _index_text(plan).encode())
    return WriteCounts(len(plan.files) - unchanged, unchanged, removed)


def _index_text(plan: OutputPlan) -> str:
    return INDEX_HEADER + "".join(f"{path}\n" for path in sorted(plan.files))


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _write_atomically(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    temporary.write_bytes(content)
    os.replace(temporary, target)


def _remove_empty_parents(folder: Path, out_dir: Path) -> None:
    root = out_dir.resolve()
    while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
