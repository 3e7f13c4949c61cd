"""The "before" sides of `diff`: out/ on disk, a git revision's render, the live cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from everest_render.commands.diff import FileChange, diff_files, diff_objects, live_view, object_key
from everest_render.emit.output import read_output, with_kustomization
from everest_render.pipeline import RenderResult


class CompareError(Exception):
    """The other side could not be read."""


def against_out(result: RenderResult, out_dir: Path, *, kustomization: bool = False) -> list[FileChange]:
    plan = with_kustomization(result.plan) if kustomization else result.plan
    return diff_files(read_output(plan, out_dir), plan.files)


def against_revision(result: RenderResult, repo: Path, revision: str, report: Callable[[str], None]) -> list[FileChange]:
    from everest_render.commands.git_revision import RevisionError, render_at_revision

    try:
        earlier = render_at_revision(repo, revision)
    except RevisionError as error:
        raise CompareError(str(error)) from error
    for diagnostic in earlier.diagnostics:
        report(f"at {revision}: {diagnostic}")
    return diff_files(earlier.plan.files, result.plan.files, before_label=revision)


def against_live(result: RenderResult) -> list[FileChange]:
    from everest_render.commands.live_cluster import LiveError, read_live_objects

    rendered = {object_key(o.obj): o.obj for o in result.objects}
    try:
        found = read_live_objects(rendered.values())
    except LiveError as error:
        raise CompareError(str(error)) from error
    before = {key: live_view(rendered[key], found[key]) for key in found}
    objects = diff_objects(before, rendered)
    return [FileChange("(cluster)", "changed", "", tuple(objects))] if objects else []
