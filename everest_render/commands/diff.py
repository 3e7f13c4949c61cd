"""What a render would change: between two output plans, or between a plan and live objects.

Pure: callers supply the "before" side (out/ on disk, a git revision's render, or objects read
from the cluster). Files are compared as text (unified diffs, for people) and as objects keyed
by apiVersion, kind, namespace and name (field-level changes, for machines). SOPS files are
compared as opaque bytes.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from everest_render.commands.guardrails import REFUSED_SHRINK, DestructiveChange, KindRules, derived_explanations, destructive_changes
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
        # "replace": an out/ file that is not UTF-8 still gets its text diff (it is reported apart).
        old_text, new_text = (old or b"").decode(errors="replace"), (new or b"").decode()
        unified = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{before_label}/{path}" if old is not None else "/dev/null",
                tofile=f"b/{after_label}/{path}" if new is not None else "/dev/null",
            )
        )
        objects = () if "/_sops/" in f"/{path}" else tuple(diff_objects(_readable_objects(old), _objects(new or b"")))
        changes.append(FileChange(path, status, unified, objects))
    return changes


def compare(
    before: Mapping[str, bytes], after: Mapping[str, bytes], rules: Mapping[tuple[str, str], KindRules], *, before_label: str = "out"
) -> Comparison:
    """Two ``{path: bytes}`` maps compared: files, destructive changes, derived explanations."""
    files = diff_files(before, after, before_label=before_label)
    changed = [c.path for c in files if "/_sops/" not in f"/{c.path}"]
    old, unreadable = _objects_of(before, changed)
    new = {k: v for path in changed for k, v in _objects(after.get(path) or b"").items()}
    return replace(compare_objects(files, old, new, rules), unreadable=unreadable)


def destructive_between(
    before: Mapping[str, bytes], after: Mapping[str, bytes], rules: Mapping[tuple[str, str], KindRules]
) -> tuple[list[DestructiveChange], list[UnreadableFile]]:
    """Only the destructive changes (what `render` checks): no text diffs, and only files that
    existed before and differ are read, so a render pays for what it changes. Also the files
    of ``before`` that could not be read as YAML."""
    paths = [p for p, old in before.items() if after.get(p) != old and "/_sops/" not in f"/{p}"]
    old, unreadable = _objects_of(before, paths)
    new = {k: v for path in paths for k, v in _objects(after.get(path) or b"").items()}
    return destructive_changes(old, new, rules), unreadable


def compare_objects(
    files: list[FileChange], before: Mapping[ObjectKey, Any], after: Mapping[ObjectKey, Any], rules: Mapping[tuple[str, str], KindRules]
) -> Comparison:
    return Comparison(files, destructive_changes(before, after, rules), derived_explanations(before, after, rules))


@dataclass(frozen=True)
class UnreadableFile:
    """A file of the "before" side (out/, edited or damaged by hand) that is not UTF-8 YAML:
    what it held cannot be compared, so no removal among it can be ruled out."""

    path: str
    problem: str  # "not valid YAML (line 2, column 1: did not find expected node content)"

    def described(self, folder: str) -> str:
        """``out/dev/a.yaml: not valid YAML (...): the objects it held cannot be compared``."""
        return f"{folder.rstrip('/')}/{self.path}: {self.problem}: the objects it held cannot be compared"


class _Unreadable(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _objects_of(files: Mapping[str, bytes], paths: list[str]) -> tuple[dict[ObjectKey, Any], list[UnreadableFile]]:
    found: dict[ObjectKey, Any] = {}
    unreadable = []
    for path in paths:
        try:
            found.update(_objects(files.get(path) or b""))
        except _Unreadable as error:
            unreadable.append(UnreadableFile(path, error.problem))
    return found, unreadable


def _readable_objects(data: bytes | None) -> dict[ObjectKey, Any]:
    try:
        return _objects(data or b"")
    except _Unreadable:
        return {}  # reported apart, as an UnreadableFile


def _objects(data: bytes) -> dict[ObjectKey, Any]:
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        raise _Unreadable(f"not UTF-8 (byte {error.start})") from None
    found = {}
    try:
        for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
            if isinstance(doc, dict):
                found[object_key(doc)] = doc
    except yaml.YAMLError as error:
        # Only the position and libyaml's words: never a quote of the file's text.
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or "unreadable"
        raise _Unreadable(f"not valid YAML ({where}{problem})") from None
    return found


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def import_deepdiff() -> Any:
    """deepdiff's DeepDiff (~0.1 s to import: only the diff command pays it). deepdiff imports
    pydantic if it can, to compare pydantic's models, which no YAML document is: where pydantic
    is installed (the development tools bring it; requirements.lock does not), that was a third
    of the import, ~50 ms of every diff. So pydantic is hidden while deepdiff is first imported,
    unless something imported it already; a deepdiff that cannot do without it is imported again
    with it. What DeepDiff reports of plain data is the same either way."""
    if "deepdiff" in sys.modules or "pydantic" in sys.modules:
        from deepdiff import DeepDiff

        return DeepDiff
    sys.modules["pydantic"] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        from deepdiff import DeepDiff
    except ImportError:
        for name in [name for name in sys.modules if name == "deepdiff" or name.startswith("deepdiff.")]:
            del sys.modules[name]
        del sys.modules["pydantic"]
        from deepdiff import DeepDiff
    finally:
        if "pydantic" in sys.modules and sys.modules["pydantic"] is None:
            del sys.modules["pydantic"]
    return DeepDiff


def diff_objects(before: Mapping[ObjectKey, Any], after: Mapping[ObjectKey, Any]) -> list[ObjectChange]:
    DeepDiff = import_deepdiff()

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
# Every format puts the destructive changes first, in their own section.

GITHUB_COMMENT_LIMIT = 65_536  # characters in a pull request comment


@dataclass(frozen=True)
class Comparison:
    """One diff: the files that differ, the destructive changes among them, and one-line
    explanations of derived fields that moved with their source (commands/guardrails.py)."""

    files: list[FileChange]
    destructive: list[DestructiveChange] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    unreadable: list[UnreadableFile] = field(default_factory=list)  # "before" files not YAML

    def __bool__(self) -> bool:
        return bool(self.files)

    @property
    def counts(self) -> dict[str, int]:
        """Objects added, changed and removed (a SOPS file counts as one object), destructive changes."""
        counts = {"added": 0, "changed": 0, "removed": 0}
        for change in self.files:
            if change.objects:
                for obj in change.objects:
                    counts[obj.status] += 1
            else:
                counts[change.status] += 1
        return {**counts, "destructive": len(self.destructive)}


def _destructive_line(change: DestructiveChange) -> str:
    where = f" (at {change.path})" if change.path else ""
    refused = f" — {REFUSED_SHRINK}" if change.refused else ""
    return f"{change}{where}{refused}"


def format_text(comparison: Comparison) -> str:
    """Destructive changes, then unified diffs; for changes that have no file text (live
    objects), one line per field."""
    parts = []
    if comparison.destructive:
        parts.append(f"destructive changes ({len(comparison.destructive)}):\n")
        parts.extend(f"  {_destructive_line(c)}\n" for c in comparison.destructive)
        parts.append("\n")
    for change in comparison.files:
        if change.unified:
            parts.append(change.unified if change.unified.endswith("\n") else change.unified + "\n")
            continue
        for obj in change.objects:
            parts.append(f"{obj.label}: {obj.status}\n")
            parts.extend(f"  {f.path}: {f.before!r} -> {f.after!r}\n" for f in obj.fields)
    return "".join(parts)


def format_markdown(comparison: Comparison, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    """Counts, destructive changes, derived-change explanations, a table and the diffs, within
    ``max_chars`` (a GitHub comment holds 65,536): what does not fit ends in "… and N more"."""
    if not comparison.files:
        return "No changes.\n"
    counts = comparison.counts
    head = [f"**{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed, {counts['destructive']} destructive**"]
    if comparison.destructive:
        head += ["", "### Destructive changes", ""]
        head += [f"- :warning: {_destructive_line(c)}" for c in comparison.destructive]
    if comparison.explanations:
        head += ["", "### Derived changes", ""]
        head += [f"- {line}" for line in comparison.explanations]

    def build(shown: int) -> str:
        files = comparison.files[:shown]
        lines = [*head, "", "| file | change | objects |", "|---|---|---|"]
        for change in files:
            objects = "<br>".join(f"{o.label}: {o.status}" for o in change.objects) or "—"
            lines.append(f"| `{change.path}` | {change.status} | {objects} |")
        for change in files:
            lines += ["", f"<details><summary>{change.path}</summary>", "", "```diff", change.unified.rstrip("\n"), "```", "", "</details>"]
        left = len(comparison.files) - shown
        if left:
            lines += ["", f"… and {left} more file{'s' if left != 1 else ''} (run everest-render diff locally for all)"]
        return "\n".join(lines) + "\n"

    low, high = 0, len(comparison.files)
    if len(build(high)) <= max_chars:
        return build(high)
    while low < high:  # the most files that fit
        middle = (low + high + 1) // 2
        if len(build(middle)) <= max_chars:
            low = middle
        else:
            high = middle - 1
    text = build(low)
    if len(text) > max_chars:
        # Not even the summary fits: cut it, keeping the counts line.
        cut = text[: max(0, max_chars - 40)].rsplit("\n", 1)[0]
        text = f"{cut}\n… and more (over {max_chars} characters)\n"[:max_chars]
    return text


def _identity(key: ObjectKey) -> dict[str, str]:
    """An object's identity as the JSON report names it."""
    return dict(zip(("apiVersion", "kind", "namespace", "name"), key, strict=True))


def format_json(comparison: Comparison) -> str:
    data = {
        "destructive": [
            {
                **_identity(c.key),
                "path": c.path,
                "what": c.what,
                "message": c.message,
                "refused": c.refused,
                "removal": c.removal,
            }
            for c in comparison.destructive
        ],
        "counts": comparison.counts,
        "explanations": comparison.explanations,
        "files": [
            {
                "file": change.path,
                "status": change.status,
                "objects": [
                    {
                        **_identity(o.key),
                        "status": o.status,
                        "changes": [{"path": f.path, "before": f.before, "after": f.after} for f in o.fields],
                    }
                    for o in change.objects
                ],
            }
            for change in comparison.files
        ],
    }
    return json.dumps(data, indent=2, default=str) + "\n"


FORMATS = {"text": format_text, "markdown": format_markdown, "json": format_json}
