"""What a render would change: between two output plans, or between a plan and live objects.

Pure: callers supply the "before" side (out/ on disk, a git revision's render, or objects read
from the cluster). Files are compared as text (unified diffs, for people) and as objects keyed
by apiVersion, kind, namespace and name (field-level changes, for machines). SOPS files are
compared as opaque bytes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from everest_render.diagnostics import format_path

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ObjectChange:
    key: ObjectKey
    status: str  # added | removed | changed
    fields: tuple[FieldChange, ...]

    @property
    def label(self) -> str:
        api_version, kind, namespace, name = self.key
        return f"{kind} {namespace}/{name} ({api_version})"


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # added | removed | changed
    unified: str
    objects: tuple[ObjectChange, ...]


def diff_files(
    before: Mapping[str, bytes], after: Mapping[str, bytes], *, before_label: str = "out", after_label: str = "out"
) -> list[FileChange]:
    """Every file that differs between two ``{path: bytes}`` maps, in path order."""
    changes = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        old_text, new_text = (old or b"").decode(), (new or b"").decode()
        unified = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{before_label}/{path}" if old is not None else "/dev/null",
                tofile=f"b/{after_label}/{path}" if new is not None else "/dev/null",
            )
        )
        objects = () if "/_sops/" in f"/{path}" else tuple(diff_objects(_objects(old_text), _objects(new_text)))
        changes.append(FileChange(path, status, unified, objects))
    return changes


def _objects(text: str) -> dict[ObjectKey, Any]:
    found = {}
    for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
        if isinstance(doc, dict):
            found[object_key(doc)] = doc
    return found


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def diff_objects(before: Mapping[ObjectKey, Any], after: Mapping[ObjectKey, Any]) -> list[ObjectChange]:
    from deepdiff import DeepDiff  # ~0.1 s to import: only the diff command pays it

    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None or new is None:
            changes.append(ObjectChange(key, "added" if old is None else "removed", ()))
            continue
        fields = []
        for kind, items in DeepDiff(old, new, view="tree").items():
            for item in items:
                path = format_path(tuple(item.path(output_format="list")))
                fields.append(
                    FieldChange(
                        path,
                        None if "added" in kind else item.t1,
                        None if "removed" in kind else item.t2,
                    )
                )
        changes.append(ObjectChange(key, "changed", tuple(sorted(fields, key=lambda f: f.path))))
    return changes


def live_view(rendered: Mapping[str, Any], live: Any) -> Any:
    """The part of a live object that a rendered one speaks about: the server and the operator
    add defaults and status, which are not differences the renderer can cause or fix."""
    if isinstance(rendered, Mapping) and isinstance(live, Mapping):
        return {key: live_view(value, live[key]) for key, value in rendered.items() if key in live}
    if isinstance(rendered, list) and isinstance(live, list) and len(rendered) == len(live):
        return [live_view(r, item) for r, item in zip(rendered, live, strict=True)]
    return live


# --- output formats --------------------------------------------------------------------


def format_text(changes: list[FileChange]) -> str:
    """Unified diffs; for changes that have no file text (live objects), one line per field."""
    parts = []
    for change in changes:
        if change.unified:
            parts.append(change.unified if change.unified.endswith("\n") else change.unified + "\n")
            continue
        for obj in change.objects:
            parts.append(f"{obj.label}: {obj.status}\n")
            parts.extend(f"  {f.path}: {f.before!r} -> {f.after!r}\n" for f in obj.fields)
    return "".join(parts)


def format_markdown(changes: list[FileChange]) -> str:
    if not changes:
        return "No changes.\n"
    lines = ["| file | change | objects |", "|---|---|---|"]
    for change in changes:
        objects = "<br>".join(f"{o.label}: {o.status}" for o in change.objects) or "—"
        lines.append(f"| `{change.path}` | {change.status} | {objects} |")
    for change in changes:
        lines += ["", f"<details><summary>{change.path}</summary>", "", "```diff", change.unified.rstrip("\n"), "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def format_json(changes: list[FileChange]) -> str:
    data = [
        {
            "file": change.path,
            "status": change.status,
            "objects": [
                {
                    "apiVersion": o.key[0],
                    "kind": o.key[1],
                    "namespace": o.key[2],
                    "name": o.key[3],
                    "status": o.status,
                    "changes": [{"path": f.path, "before": f.before, "after": f.after} for f in o.fields],
                }
                for o in change.objects
            ],
        }
        for change in changes
    ]
    return json.dumps(data, indent=2, default=str) + "\n"


FORMATS = {"text": format_text, "markdown": format_markdown, "json": format_json}
