"""The "before" sides of `diff`: out/ on disk, a git revision's render, the live cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from everest_render.commands.diff import Comparison, FileChange, compare, compare_objects, diff_objects, live_view, object_key
from everest_render.commands.guardrails import KindRules, rules_by_kind
from everest_render.emit.output import read_output, with_kustomization
from everest_render.results import RenderResult

if TYPE_CHECKING:
    from everest_render.commands.git_revision import EarlierRender


class CompareError(Exception):
    """The other side could not be read."""


def kind_rules(result: RenderResult) -> dict[tuple[str, str], KindRules]:
    """What each rendered kind's fields mean, from the providers in effect."""
    catalog = result.resolved.catalog
    return rules_by_kind(catalog.providers.values()) if catalog is not None else {}


def against_out(result: RenderResult, out_dir: Path, *, kustomization: bool = False) -> Comparison:
    plan = with_kustomization(result.plan) if kustomization else result.plan
    return compare(read_output(plan, out_dir), plan.files, kind_rules(result))


def against_revision(
    result: RenderResult, revision: str, earlier_render: Callable[[], EarlierRender], report: Callable[[str], None]
) -> Comparison:
    """Today's render against the revision's (``earlier_render``: from
    git_revision.render_with_revision, which rendered both sides)."""
    from everest_render.commands.git_revision import RevisionError

    try:
        earlier = earlier_render()
    except RevisionError as error:
        raise CompareError(str(error)) from error
    for diagnostic in earlier.diagnostics:
        report(f"at {revision}: {diagnostic}")
    return compare(earlier.files, result.plan.files, kind_rules(result), before_label=revision)


def against_live(result: RenderResult) -> Comparison:
    from everest_render.commands.live_cluster import LiveError, read_live_objects

    rendered = {object_key(o.obj): o.obj for o in result.objects}
    try:
        found = read_live_objects(rendered.values())
    except LiveError as error:
        raise CompareError(str(error)) from error
    before = {key: live_view(rendered[key], found[key]) for key in found}
    objects = diff_objects(before, rendered)
    files = [FileChange("(cluster)", "changed", "", tuple(objects))] if objects else []
    # Only objects that exist on both sides: a live diff never sees a removal.
    return compare_objects(files, before, {key: rendered[key] for key in before}, kind_rules(result))
