"""The command line: options in, one pipeline call, diagnostics and data out.

Data goes to stdout, diagnostics to stderr. Exit codes (API.md section 4) are decided in
`exit_code` only: 0 success, 1 differences found, 2 usage error, 3 invalid input.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from everest_render.commands.report import (
    Tally,
    annotation,
    check_summary,
    diagnostic_annotation,
    failure_summary,
    render_summary,
    validate_summary,
)
from everest_render.diagnostics import Diagnostic, has_errors

EXIT_OK, EXIT_DIFFERENCES, EXIT_USAGE, EXIT_INVALID, EXIT_DESTRUCTIVE = 0, 1, 2, 3, 4


def exit_code(*, failed: bool = False, differences: bool = False, blocked: bool = False) -> int:
    """``blocked``: a destructive change the guardrails stop (commands/guardrails.py)."""
    if failed:
        return EXIT_INVALID
    if blocked:
        return EXIT_DESTRUCTIVE
    if differences:
        return EXIT_DIFFERENCES
    return EXIT_OK


@dataclass(frozen=True)
class Output:
    """Where a run's problems go. Text mode: one line each on stderr. JSON mode (``--format
    json``): into the JSON report on stdout, nothing on stderr. Annotations (GitHub Actions):
    also one workflow command each on stderr, in either mode. The summary line is text mode's."""

    repo: Path
    as_json: bool = False
    annotations: bool = False
    quiet: bool = False

    def diagnostics(self, diagnostics: Iterable[Diagnostic], *, in_report: bool | None = None) -> None:
        """``in_report``: whether the JSON report holds them (default: in JSON mode)."""
        for diagnostic in diagnostics:
            if not (self.as_json if in_report is None else in_report):
                click.echo(str(diagnostic), err=True)
            if self.annotations:
                click.echo(diagnostic_annotation(diagnostic, self._workspace_path(diagnostic.file)), err=True)

    def error(self, message: str, file: Path | None = None) -> None:
        """A problem that is not at a position in an input file (``error: ...``)."""
        if not self.as_json:
            click.echo(f"error: {message}", err=True)
        if self.annotations:
            click.echo(annotation(True, message, None if file is None else _relative_to_workspace(file)), err=True)

    def warning(self, message: str) -> None:
        """A warning that is not at a position in an input file (``warning: ...``)."""
        if not self.as_json:
            click.echo(f"warning: {message}", err=True)
        if self.annotations:
            click.echo(annotation(False, message), err=True)

    def change(self, line: str, file: Path) -> None:
        """One of --check's lines (``stale: out/...``); on GitHub, an error on that file."""
        click.echo(line, err=True)
        if self.annotations:
            click.echo(annotation(True, f"{line} (run everest-render render)", _relative_to_workspace(file)), err=True)

    def summary(self, line: str) -> None:
        if not (self.quiet or self.as_json):
            click.echo(line, err=True)

    def _workspace_path(self, file: str) -> str | None:
        from everest_render.load.text import BUILTIN_PREFIX

        return None if file.startswith(BUILTIN_PREFIX) else _relative_to_workspace(self.repo / file)


def _relative_to_workspace(path: Path) -> str:
    """GitHub resolves an annotation's file against the checkout (GITHUB_WORKSPACE)."""
    workspace = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    return Path(os.path.relpath(path.absolute(), Path(workspace).absolute())).as_posix()


def _failure_json(diagnostics: Iterable[Diagnostic], clusters: Iterable[str] = (), errors: Iterable[str] = ()) -> None:
    """The report every ``--format json`` command prints when it fails: validate's shape."""
    _print_json(
        {
            "valid": False,
            "clusters": sorted(clusters),
            "diagnostics": [*(_diagnostic_json(d) for d in diagnostics), *(_unlocated_json(e) for e in errors)],
        }
    )


def _report(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        click.echo(str(diagnostic), err=True)


def _finish(code: int) -> NoReturn:
    sys.exit(code)


def _stopped_when_kept_files_are_lost(command: Callable[..., None]) -> Callable[..., None]:
    """A render whose output taken from the cache could not be read, nor made again as it was
    (cache/kept.py: the cache and the repository both changed during the run) stops with one
    error, before writing anything."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from everest_render.cache.kept import KeptFilesLost

        try:
            command(*args, **kwargs)
        except KeptFilesLost as error:
            click.echo(f"error: {error}", err=True)
            _finish(EXIT_INVALID)

    return run


def _option_text(ctx: click.Context, name: str) -> str:
    """How the user gave option ``name``: ``--check``, or ``--stdout (from EVEREST_RENDER_STDOUT)``."""
    param = next(p for p in ctx.command.params if p.name == name)
    flag = max(param.opts, key=len)
    if ctx.get_parameter_source(name) is ParameterSource.ENVIRONMENT:
        names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or [])
        variable = next((n for n in names if n in os.environ), names[0])
        return f"{flag} (from {variable})"
    return flag


def _exclusive(ctx: click.Context, first: str, second: str, why: str) -> None:
    if ctx.params.get(first) and ctx.params.get(second):
        raise click.UsageError(f"{_option_text(ctx, first)} and {_option_text(ctx, second)} exclude each other: {why}", ctx)


def _existing_repo(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    # click's message names the option and its variable: "Invalid value for '--repo' (env var: ...)";
    # click.Path already refuses a file.
    if not value.is_dir():
        raise click.BadParameter(f"{value} does not exist", ctx, param)
    return value


# --- options ----------------------------------------------------------------------------
# docs/api.md, "Options and variables", states the rules these follow: contradicting options
# are a usage error naming both (and the variable either came from); a shared variable whose
# value a command cannot take is ignored by that command.

repo_option = click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    envvar="EVEREST_RENDER_REPO",
    show_envvar=True,
    callback=_existing_repo,
    help="The GitOps repository to read (must exist).",
)


def out_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="EVEREST_RENDER_OUT",
        show_envvar=True,
        help=help_text,
    )


def _default_jobs() -> int:
    from everest_render.parallel import available_cpus  # imported only when --jobs is not given

    return available_cpus()


jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=_default_jobs,
    show_default="the CPUs this process may use (a container's CPU limit, not the node's count)",
    envvar="EVEREST_RENDER_JOBS",
    show_envvar=True,
    help="Processes to render a large fleet on (the output does not depend on it).",
)
no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    envvar="EVEREST_RENDER_NO_CACHE",
    show_envvar=True,
    help="Render every cluster afresh, neither reading nor writing the cache (EVEREST_RENDER_CACHE names its folder).",
)


def _open_cache(no_cache: bool) -> Any:
    """The render cache (cache/store.py), or None with --no-cache; one that cannot be written
    is off, and says why in its ``warning`` (printed once by `_cache_warning`)."""
    from everest_render.commands.plugin import open_cache

    return open_cache(no_cache)


def _cache_warning(output: Output | None, cache: Any) -> None:
    if cache is not None and cache.warning:
        if output is None:
            click.echo(f"warning: {cache.warning}", err=True)
        else:
            output.warning(cache.warning)
        cache.warning = None


kustomization_option = click.option(
    "--kustomization",
    is_flag=True,
    envvar="EVEREST_RENDER_KUSTOMIZATION",
    show_envvar=True,
    help="Also write out/kustomization.yaml listing every rendered file.",
)
quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="EVEREST_RENDER_QUIET",
    show_envvar=True,
    help="Print no summary line at the end (problems are still printed).",
)
annotations_option = click.option(
    "--annotations",
    type=click.Choice(["auto", "github", "none"]),
    default="auto",
    show_default=True,
    envvar="EVEREST_RENDER_ANNOTATIONS",
    show_envvar=True,
    help="Also print each problem as a GitHub Actions annotation on stderr (auto: when GITHUB_ACTIONS=true).",
)

fail_on_destructive_option = click.option(
    "--fail-on-destructive",
    is_flag=True,
    envvar="EVEREST_RENDER_FAIL_ON_DESTRUCTIVE",
    show_envvar=True,
    help="Exit 4 (writing nothing) when the change holds a destructive change (docs/gitops.md).",
)
allow_removals_option = click.option(
    "--allow-removals",
    is_flag=True,
    envvar="EVEREST_RENDER_ALLOW_REMOVALS",
    show_envvar=True,
    help="Accept removing more than one database at once (otherwise exit 4).",
)

SOPS_CHOICES = ("refuse", "omit", "keep")  # what a stream does with SOPS files (docs/gitops.md)

SHARED_FORMAT_VARIABLE = "EVEREST_RENDER_FORMAT"


def format_option(command: str, choices: tuple[str, ...] = ("text", "json")) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--format, read from EVEREST_RENDER_<COMMAND>_FORMAT (strict), else from the shared
    EVEREST_RENDER_FORMAT when its value is one of ``choices`` (``markdown`` is diff's alone:
    it must not break validate), else text."""

    def fallback(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        if value is not None:
            return value
        shared = os.environ.get(SHARED_FORMAT_VARIABLE, "")
        return shared if shared in choices else "text"

    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=None,
        show_default="text",
        envvar=f"EVEREST_RENDER_{command.upper()}_FORMAT",
        show_envvar=True,
        callback=fallback,
        help=f"Output format. Also read from {SHARED_FORMAT_VARIABLE} when it names one of these.",
    )


def _annotations(mode: str) -> bool:
    return mode == "github" or (mode == "auto" and os.environ.get("GITHUB_ACTIONS") == "true")


def _epilog(examples: list[str], codes: list[str]) -> str:
    """Examples and exit codes at the end of --help (``\b``: click keeps the lines as they are)."""
    return "\b\nExamples:\n" + "".join(f"  {e}\n" for e in examples) + "\n\b\nExit codes:\n" + "\n".join(f"  {c}" for c in codes)


USAGE_CODE = "2  usage error (unknown option, contradicting options, no such --repo)"
DESTRUCTIVE_CODE = "4  stopped by a guardrail: a storage shrink, --fail-on-destructive, or removals without --allow-removals"
INVALID_CODE = "3  invalid input or render error: nothing written, nothing on stdout"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="everest-render")
def main() -> None:
    """Render OpenEverest DatabaseClusters into native operator manifests."""
    # A command is a short batch over acyclic data: the cyclic collector would only re-walk the
    # growing object graph (about 10% of a 1,000-cluster render). Memory is freed at exit.
    gc.disable()


@main.command(
    epilog=_epilog(
        [
            "everest-render render                      # write out/",
            "everest-render render --check              # CI gate: exit 1 when out/ is stale",
            "everest-render render --stdout --only shop # one stream, namespace shop only",
        ],
        [
            "0  rendered (with --check: out/ is up to date)",
            "1  --check: out/ differs from the render",
            USAGE_CODE,
            INVALID_CODE,
            DESTRUCTIVE_CODE,
        ],
    )
)
@repo_option
@out_option("Output folder (default: <repo>/out).")
@click.option(
    "--stdout",
    "to_stdout",
    is_flag=True,
    envvar="EVEREST_RENDER_STDOUT",
    show_envvar=True,
    help="Print one YAML stream instead of writing out/.",
)
@click.option(
    "--check",
    is_flag=True,
    envvar="EVEREST_RENDER_CHECK",
    show_envvar=True,
    help="Write nothing; exit 1 when out/ differs from what would be written.",
)
@kustomization_option
@click.option(
    "--only",
    multiple=True,
    metavar="NAMESPACE[/NAME]",
    envvar="EVEREST_RENDER_ONLY",
    show_envvar=True,
    help="With --stdout: print only these namespaces or clusters (repeatable; the whole repository is still validated).",
)
@click.option(
    "--sops",
    type=click.Choice(SOPS_CHOICES),
    default="refuse",
    show_default=True,
    envvar="EVEREST_RENDER_SOPS",
    show_envvar=True,
    help="With --stdout: SOPS files, which nothing on that path decrypts: refuse (exit 3), omit, or keep (a plugin decrypts them).",
)
@fail_on_destructive_option
@allow_removals_option
@jobs_option
@no_cache_option
@quiet_option
@annotations_option
@click.pass_context
@_stopped_when_kept_files_are_lost
def render(
    ctx: click.Context,
    repo: Path,
    out_dir: Path | None,
    to_stdout: bool,
    check: bool,
    kustomization: bool,
    only: tuple[str, ...],
    sops: str,
    fail_on_destructive: bool,
    allow_removals: bool,
    jobs: int,
    no_cache: bool,
    quiet: bool,
    annotations: str,
) -> None:
    """Render every DatabaseCluster of the repository into out/."""
    from everest_render.cache.outputs import open_record
    from everest_render.emit.output import (
        OutputError,
        OutputLock,
        OutputPlan,
        changed_output,
        differences,
        held_files,
        with_kustomization,
        without_sops,
        write_output,
    )

    # Not pipeline's: a render replayed from the cache (no input changed) loads no stage.
    from everest_render.incremental import render_incremental
    from everest_render.results import RenderResult

    _exclusive(ctx, "check", "to_stdout", "--check compares out/ with the render, --stdout prints the render instead")
    if only and not to_stdout:
        raise click.UsageError(f"{_option_text(ctx, 'only')} selects what --stdout prints; out/ always holds every cluster", ctx)
    # The stream is the result of --stdout: no summary beside it (Argo CD reads stderr too).
    output = Output(repo, annotations=_annotations(annotations), quiet=quiet or to_stdout)
    out_dir = out_dir if out_dir is not None else repo / "out"
    cache = _open_cache(no_cache)
    selection = None
    if only:
        from everest_render.pipeline import Selection  # as render_incremental would load it

        selection = Selection(only)
    # out/ known by its files' stat (cache/outputs.py): a file holding what is planned is not read.
    trust = open_record(cache, out_dir) if not to_stdout else None
    # out/ as read for a replay's plan (its files' mapping, and what out/ held of the files that
    # do not hold their planned bytes): read once for the replay's test, the guardrails and a
    # render going on with the same files.
    seen: list[tuple[object, dict[str, bytes]]] = []
    planned: list[tuple[object, OutputPlan]] = []  # the last plan's files, and the plan as written
    # out/'s files known to hold a plan's bytes, looked at once for its files (the replay's test,
    # the guardrails, the check or the write): for a write, under out/'s lock, taken for the look
    # and held to the write (released when a replay is refused: the render takes a while).
    # Without a record (no cache), the lock is taken for the guardrails' look, which then reads
    # every planned file: what it finds holding its bytes the write does not read again.
    lock = OutputLock(out_dir) if not to_stdout and not check else None
    known: list[tuple[object, set[str]]] = []

    def held(plan: OutputPlan) -> set[str] | None:
        if trust is None:
            return None
        if not known or known[0][0] is not plan.files:
            if lock is not None:
                lock.take()
            known[:] = [(plan.files, held_files(plan, out_dir, trust))]
        return known[0][1]

    def written(plan: OutputPlan) -> OutputPlan:
        if not planned or planned[0][0] is not plan.files:  # a fleet's kustomization.yaml lists thousands of files
            planned[:] = [(plan.files, with_kustomization(plan) if kustomization else plan)]
        return planned[0][1]

    def out_holds(replayed: RenderResult) -> bool:
        """Whether out/ holds the replayed render. If not, its destructive changes are judged
        by the providers' rules, which a replay does not hold (it read no provider): the
        render goes on from the files it read, as without a replay."""
        if replayed.failed:
            return True
        plan = written(replayed.plan)
        changed, exact = changed_output(plan, out_dir, trust, held(plan))
        seen[:] = [(plan.files, _present(changed))]
        return exact

    def rendering() -> None:
        """Clusters are rendered (a while): out/'s lock, if taken for a replay, is let go. A
        replay whose changes are judged keeps it: its look at out/ stands for the write."""
        if lock is not None:
            lock.release()

    try:
        result = render_incremental(
            repo, out_dir, selection, jobs, cache, replay=True if to_stdout else out_holds, rendering=rendering
        )
        _cache_warning(output, cache)
        output.diagnostics(result.diagnostics)
        tally = Tally.of(result.diagnostics)
        if result.failed:
            output.summary(failure_summary(tally))
            _finish(exit_code(failed=True))
        plan = written(result.plan)
        if to_stdout:
            refused = _sops_refused(plan, sops)
            if refused:
                output.error(refused)
                _finish(EXIT_INVALID)
            plan = without_sops(plan) if sops == "omit" else plan
        if only and not plan.files:
            # An empty stream would make Argo CD prune the application's databases.
            output.error(f"--only {' '.join(only)} selects no cluster or namespace of {repo}")
            _finish(EXIT_INVALID)
        if to_stdout:
            sys.stdout.buffer.write(plan.stream())
            sys.stdout.flush()
            _finish(EXIT_OK)
        clusters = result.cluster_count
        current = seen[0][1] if seen and seen[0][0] is plan.files else None  # read for these very files
        # No record to know out/'s files by: those the guardrails' look reads and finds holding
        # their bytes, under out/'s lock held to the write (if free at once; out/ exists).
        holding: set[str] | None = set() if trust is None and current is None and lock is not None and lock.take() else None
        flagged, reasons = _guardrails(
            output,
            result,
            plan,
            out_dir,
            fail_on_destructive=fail_on_destructive,
            allow_removals=allow_removals,
            current=current,
            trust=trust,
            held=held(plan) if current is None else None,
            holding=holding,
        )
        tally = Tally(tally.errors + len(reasons), tally.error_files, tally.warnings + flagged)
        if reasons:
            output.summary(failure_summary(tally))
            _finish(exit_code(blocked=True))
        if check:
            changes = differences(plan, out_dir, trust, held(plan))
            if trust is not None:
                trust.save()
            for change in changes:
                status, path = change.split(": ", 1)
                output.change(f"{status}: {(out_dir / path).as_posix()}", out_dir / path)
            output.summary(check_summary(clusters, tally, len(plan.files) + 1, changes))  # + the index
            _finish(exit_code(differences=bool(changes)))
        named = ctx.get_parameter_source("out_dir") not in (None, ParameterSource.DEFAULT)
        if not named and not out_dir.resolve().is_relative_to(repo.resolve()):
            # A link planted as out/ would have the render write wherever it leads.
            where = f"{out_dir} resolves to {out_dir.resolve()}, outside the repository"
            output.error(f"{where}; writing nothing (name it with --out to write there)")
            output.summary(failure_summary(Tally.of(result.diagnostics, unlocated_errors=1)))
            _finish(EXIT_INVALID)
        try:
            counts = write_output(plan, out_dir, trust, lock=lock, held=held(plan) if holding is None else holding)
        except OutputError as error:
            output.error(str(error))
            output.summary(failure_summary(Tally.of(result.diagnostics, unlocated_errors=1)))
            _finish(EXIT_INVALID)
        if trust is not None:
            trust.save()
        output.summary(render_summary(clusters, tally, counts.written, counts.unchanged, counts.removed))
        _finish(EXIT_OK)
    finally:
        if lock is not None:
            lock.release()


def _present(files: dict[str, bytes | None]) -> dict[str, bytes]:
    return {path: data for path, data in files.items() if data is not None}


def _sops_refused(plan: Any, choice: str) -> str | None:
    from everest_render.commands.plugin import sops_refused

    return sops_refused(plan, choice)


def _guardrails(
    output: Output,
    result: Any,
    plan: Any,
    out_dir: Path,
    *,
    fail_on_destructive: bool,
    allow_removals: bool,
    current: Any = None,
    trust: Any = None,
    held: set[str] | None = None,
    holding: set[str] | None = None,
) -> tuple[int, list[str]]:
    """The destructive changes from out/ to this render, printed as warnings, and why a
    guardrail stops the run (printed as errors): (how many changes, the reasons). ``holding``:
    filled with the planned files out/ was read and found to hold (`changed_output`)."""
    from everest_render.emit.output import changed_output

    # ``current``: what out/ holds of the files that differ from this very plan, as the caller
    # read it (only those can hold a destructive change; the plan's bytes are read for them).
    before = current if current is not None else _present(changed_output(plan, out_dir, trust, held, holding)[0])
    if not before:
        return 0, []  # out/ holds the plan: nothing to judge (and the judges' modules stay unloaded)
    from everest_render.commands.baselines import kind_rules
    from everest_render.commands.diff import destructive_between
    from everest_render.commands.guardrails import blocking_reasons, unreadable_blocks

    destructive, unreadable = destructive_between(before, plan.files, kind_rules(result))
    described = [file.described(out_dir.as_posix()) for file in unreadable]
    reasons = blocking_reasons(destructive, fail_on_destructive=fail_on_destructive, allow_removals=allow_removals, unreadable=described)
    for change in destructive:
        output.warning(f"destructive change: {change}" + (f" (at {change.path})" if change.path else ""))
    if not unreadable_blocks(fail_on_destructive=fail_on_destructive, allow_removals=allow_removals):
        for line in described:
            output.warning(line)
    for reason in reasons:
        output.error(reason)
    return len(destructive) + len(described), reasons


@main.command(
    epilog=_epilog(
        ["everest-render validate", "everest-render validate --format json | jq .diagnostics"],
        ["0  valid (warnings do not count)", USAGE_CODE, INVALID_CODE],
    )
)
@repo_option
@format_option("validate")
@jobs_option
@no_cache_option
@quiet_option
@annotations_option
def validate(repo: Path, output_format: str, jobs: int, no_cache: bool, quiet: bool, annotations: str) -> None:
    """Load, validate and render everything in memory; write nothing."""
    from everest_render.pipeline import read_repository, render_repository

    output = Output(repo, as_json=output_format == "json", annotations=_annotations(annotations), quiet=quiet)
    cache = _open_cache(no_cache)
    result = render_repository(read_repository(repo), jobs=jobs, cache=cache)
    _cache_warning(output, cache)
    output.diagnostics(result.diagnostics)
    if output.as_json:
        _print_json(
            {
                "valid": not result.failed,
                "clusters": sorted(str(c.ref) for c in result.resolved.clusters),
                "diagnostics": [_diagnostic_json(d) for d in result.diagnostics],
            }
        )
    tally = Tally.of(result.diagnostics)
    output.summary(failure_summary(tally) if result.failed else validate_summary(len(result.resolved.clusters), tally))
    _finish(exit_code(failed=result.failed))


@main.command(
    epilog=_epilog(
        ["everest-render explain shop/orders", "everest-render explain orders        # when only one namespace has it"],
        [
            "0  explained (errors elsewhere in the repository are a warning)",
            USAGE_CODE + "; an ambiguous NAME",
            INVALID_CODE + "; no such cluster",
        ],
    )
)
@click.argument("cluster", metavar="[NAMESPACE/]NAME")
@repo_option
@format_option("explain")
@annotations_option
def explain(cluster: str, repo: Path, output_format: str, annotations: str) -> None:
    """Show how a cluster resolves: provider, topology, versions, images and every default.

    NAME alone is enough when one namespace has a cluster of that name."""
    from everest_render.commands.explain import explain_json, explain_text, find_cluster, look_up
    from everest_render.pipeline import read_repository, resolve_repository

    if cluster.count("/") > 1 or not all(cluster.split("/")):
        raise click.BadParameter("expected NAMESPACE/NAME or NAME", param_hint="[NAMESPACE/]NAME")
    output = Output(repo, as_json=output_format == "json", annotations=_annotations(annotations))
    result = resolve_repository(read_repository(repo))
    lookup = look_up(result, cluster)
    if lookup.ambiguous:
        raise click.UsageError(f"{cluster} is in several namespaces: {', '.join(lookup.ambiguous)}; name one as NAMESPACE/NAME")
    found = None if lookup.ref is None else find_cluster(result, lookup.ref)
    source = None if found is None else found.cluster.document.source.path
    # The cluster's own file decides; the rest of the repository does not stop an explanation.
    own = [d for d in result.diagnostics if d.file == source]
    if found is None or has_errors(own):
        missing = [] if lookup.ref is not None or result.failed else [f"no DatabaseCluster {cluster} in {repo}{lookup.suggestion}"]
        output.diagnostics(result.diagnostics)
        for message in missing:
            output.error(message)
        if output.as_json:
            _failure_json(result.diagnostics, (str(c.ref) for c in result.clusters), missing)
        _finish(EXIT_INVALID)
    output.diagnostics(own)
    elsewhere = Tally.of(d for d in result.diagnostics if d.file != source)
    note = f"the rest of the repository has {elsewhere.verdict('')} (everest-render validate lists them)" if elsewhere.errors else None
    if output.as_json:
        data = explain_json(found, result.catalog, result.inputs.passthrough)
        data["diagnostics"] = [_diagnostic_json(d) for d in own]
        data["elsewhere"] = {"errors": elsewhere.errors, "files": elsewhere.error_files, "warnings": elsewhere.warnings}
        _print_json(data)
    else:
        click.echo(explain_text(found, result.catalog, result.inputs.passthrough), nl=False)
    if note is not None:
        output.warning(note)
    _finish(EXIT_OK)


@main.command(
    epilog=_epilog(
        [
            "everest-render diff                          # against out/",
            "everest-render diff --against origin/main --format markdown",
            "everest-render diff --live --format json",
        ],
        ["0  no differences", "1  something would change", USAGE_CODE, INVALID_CODE + "; the other side cannot be read", DESTRUCTIVE_CODE],
    )
)
@repo_option
@out_option("Output folder to compare with (default: <repo>/out).")
@click.option(
    "--against",
    "revision",
    metavar="GIT_REF",
    envvar="EVEREST_RENDER_AGAINST",
    show_envvar=True,
    help="Compare with the render of the repository at this git revision.",
)
@click.option(
    "--live", is_flag=True, envvar="EVEREST_RENDER_LIVE", show_envvar=True, help="Compare with the objects in the cluster (kubeconfig)."
)
@kustomization_option
@format_option("diff", ("text", "markdown", "json"))
@click.option(
    "--max-chars",
    type=click.IntRange(min=200),
    default=65_536,
    show_default="65536, GitHub's comment limit",
    envvar="EVEREST_RENDER_MAX_CHARS",
    show_envvar=True,
    help="With --format markdown: the longest text to print; what does not fit ends in '… and N more'.",
)
@fail_on_destructive_option
@allow_removals_option
@jobs_option
@no_cache_option
@annotations_option
@click.pass_context
def diff(
    ctx: click.Context,
    repo: Path,
    out_dir: Path | None,
    revision: str | None,
    live: bool,
    output_format: str,
    kustomization: bool,
    max_chars: int,
    fail_on_destructive: bool,
    allow_removals: bool,
    jobs: int,
    no_cache: bool,
    annotations: str,
) -> None:
    """Show what rendering would change: in out/ (default), since a git revision, or in the cluster."""
    from everest_render.commands.baselines import CompareError, against_live, against_out, against_revision
    from everest_render.commands.diff import format_json, format_markdown, format_text
    from everest_render.pipeline import read_repository, render_repository

    _exclusive(ctx, "revision", "live", "--against compares with a git revision, --live with the cluster")
    output = Output(repo, as_json=output_format == "json", annotations=_annotations(annotations))
    out_dir = out_dir if out_dir is not None else repo / "out"
    cache = _open_cache(no_cache)
    earlier_render = None
    if revision is not None and not live:
        from everest_render.commands.git_revision import render_with_revision

        # Both sides at once: a cluster the same on both renders once, so the diff costs
        # about one render, not two (with or without the cache).
        result, earlier_render = render_with_revision(repo, out_dir, revision, jobs, cache)
    else:
        # Only the live cluster's side compares objects; every other side compares the files.
        result = render_repository(read_repository(repo, out_dir), jobs=jobs, cache=cache, keep_objects=live)
    _cache_warning(output, cache)
    clusters = [str(c.ref) for c in result.resolved.clusters]
    # The JSON report of a success is the list of changes: warnings stay on stderr.
    output.diagnostics(result.diagnostics, in_report=output.as_json and result.failed)
    if result.failed:
        if output.as_json:
            _failure_json(result.diagnostics, clusters)
        _finish(EXIT_INVALID)
    try:
        if live:
            changes = against_live(result)
        elif revision is not None and earlier_render is not None:
            changes = against_revision(result, revision, earlier_render, lambda line: click.echo(line, err=True))
        else:
            changes = against_out(result, out_dir, kustomization=kustomization)
    except CompareError as error:
        output.error(str(error))
        if output.as_json:
            _failure_json(result.diagnostics, clusters, [str(error)])
        _finish(EXIT_INVALID)
    if output_format == "markdown":
        click.echo(format_markdown(changes, max_chars), nl=False)
    else:
        click.echo((format_json if output_format == "json" else format_text)(changes), nl=False)
    # The report on stdout already lists the destructive changes: stderr only says what stops,
    # and which files of out/ could not be compared.
    from everest_render.commands.guardrails import blocking_reasons, unreadable_blocks

    described = [file.described(out_dir.as_posix()) for file in changes.unreadable]
    if not unreadable_blocks(fail_on_destructive=fail_on_destructive, allow_removals=allow_removals):
        for line in described:
            output.warning(line)

    reasons = blocking_reasons(
        changes.destructive, fail_on_destructive=fail_on_destructive, allow_removals=allow_removals, unreadable=described
    )
    for reason in reasons:
        output.error(reason)
    _finish(exit_code(differences=bool(changes), blocked=bool(reasons)))


@main.command(
    epilog=_epilog(
        ["kustomize build --enable-alpha-plugins --enable-exec .   # with everest-render krm as an exec transformer"],
        ["0  rendered", "1  problems: they are the ResourceList's results, and it has no items"],
    )
)
def krm() -> None:
    """Run as a KRM function: a ResourceList on stdin, the rendered ResourceList on stdout."""
    from everest_render.commands.krm import run_function

    output, failed = run_function(sys.stdin.read())
    sys.stdout.write(output)
    _finish(EXIT_DIFFERENCES if failed else EXIT_OK)


@main.group()
def argocd() -> None:
    """Argo CD's config management plugin (deploy/argocd/plugin.yaml runs these)."""


@argocd.command(
    "generate",
    epilog=_epilog(
        ["cd apps/shop && ARGOCD_APP_SOURCE_PATH=apps/shop ARGOCD_ENV_ONLY=shop everest-render argocd generate"],
        [
            "0  rendered",
            "2  the application's choices are contradictory or malformed",
            "3  invalid input or an empty render (nothing on stdout)",
        ],
    ),
)
def argocd_generate() -> None:
    """Print the application's objects: exactly what render --stdout prints for its selection.

    Run by the CMP server in the application's directory. The repository root is that
    directory minus ARGOCD_APP_SOURCE_PATH; an application below the root renders only the
    clusters written in files under its directory. Choices (plugin env ARGOCD_ENV_<NAME>,
    parameters PARAM_<NAME> or ARGOCD_APP_PARAMETERS, all the same): only (namespaces or
    namespace/name, separated by spaces, commas or newlines), allow-empty (true to accept a
    render with no object, which prunes every database of the application).
    """
    from everest_render.commands.plugin import generate

    _finish(generate())


@argocd.command(
    "discover",
    epilog=_epilog(["cd apps/shop && everest-render argocd discover"], ["0  whether or not anything was found"]),
)
def argocd_discover() -> None:
    """Print the first file that holds a DatabaseCluster or an Instance under the current
    directory (the CMP server uses this plugin when something is printed); print nothing otherwise."""
    from everest_render.commands.plugin import discover

    _finish(discover())


@main.command(
    epilog=_epilog(
        ["everest-render schemas           # regenerate providers/*/schemas/", "everest-render schemas --check   # CI: are they current?"],
        [
            "0  written (with --check: current)",
            "1  --check: a schema is stale",
            USAGE_CODE,
            "3  a provider names a CRD that is not vendored",
        ],
    )
)
@repo_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 naming each stale schema.")
def schemas(repo: Path, check: bool) -> None:
    """Generate the providers' strict schemas from the CRDs vendored in each provider folder's crds/<version>/."""
    from everest_render.authoring.crd_schema import MissingCrd, expected_schemas
    from everest_render.check.cel_rules import CelSyntaxError

    stale = []
    try:
        for target, text in expected_schemas(repo):
            relative = target.relative_to(repo).as_posix()
            if check:
                if not target.is_file() or target.read_text(encoding="utf-8") != text:
                    stale.append(relative)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            click.echo(f"wrote {relative}", err=True)
    except (MissingCrd, CelSyntaxError) as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_INVALID)
    for relative in stale:
        click.echo(f"stale: {relative} (run everest-render schemas)", err=True)
    _finish(exit_code(differences=bool(stale)))


@main.group()
def providers() -> None:
    """Providers and definitions in effect."""


@providers.command(
    "list",
    epilog=_epilog(
        ["everest-render providers list", "everest-render providers list --format json"],
        ["0  listed", USAGE_CODE, "3  a definition or provider is invalid"],
    ),
)
@repo_option
@format_option("providers_list")
@annotations_option
def providers_list(repo: Path, output_format: str, annotations: str) -> None:
    """List providers, their definitions, topologies and versions (built-in or the repository's)."""
    from everest_render.commands.explain import providers_json, providers_text
    from everest_render.pipeline import read_repository, resolve_repository

    output = Output(repo, as_json=output_format == "json", annotations=_annotations(annotations))
    result = resolve_repository(read_repository(repo))
    # An empty clusters/ folder is fine for listing providers.
    problems = [d for d in result.diagnostics if d.file != "clusters"]
    failed = result.catalog is None or any(d.is_error for d in problems)
    # A JSON listing cannot hold diagnostics: they are in the failure report, or on stderr.
    output.diagnostics(problems, in_report=output.as_json and failed)
    if output.as_json and failed:
        _failure_json(problems, (str(c.ref) for c in result.clusters))
    elif result.catalog is not None:
        if output.as_json:
            _print_json(providers_json(result.catalog))
        else:
            click.echo(providers_text(result.catalog), nl=False)
    _finish(exit_code(failed=failed))


@main.command(
    "editor-schema",
    epilog=_epilog(
        [
            "everest-render editor-schema --out .vscode/everest-render.schema.json",
            "everest-render editor-schema > everest-render.schema.json",
        ],
        ["0  written", USAGE_CODE, "3  a definition or provider is invalid (nothing written)"],
    ),
)
@repo_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the schema here (default: stdout).")
def editor_schema(repo: Path, out_file: Path | None) -> None:
    """Write one JSON Schema of every input kind, specialised to the providers in effect, for YAML editors."""
    import json

    from everest_render.authoring.editor_schema import editor_schema as build
    from everest_render.pipeline import read_repository, resolve_repository

    result = resolve_repository(read_repository(repo))
    problems = [d for d in result.diagnostics if d.file != "clusters" and d.is_error and not d.file.startswith("clusters/")]
    if result.catalog is None or problems:
        _report(problems)
        _finish(EXIT_INVALID)
    text = json.dumps(build(result.catalog), sort_keys=True, indent=1) + "\n"
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_file}", err=True)
    _finish(EXIT_OK)


@main.group()
def provider() -> None:
    """Write and test a provider: scaffold one, run its case files."""


@provider.command(
    "new",
    epilog=_epilog(
        [
            "everest-render provider new valkey --kind hyperspike.io/v1/Valkey --crd valkeys.yaml",
            "everest-render provider new redis --kind example.io/v1/Redis --operator redis-operator --operator-version 2.1.0",
        ],
        [
            "0  written",
            USAGE_CODE + " (also: the folder exists, a bad name or kind, a CRD without the kind)",
            "3  the scaffold does not render",
        ],
    ),
)
@click.argument("name")
@click.option("--kind", "kind", required=True, metavar="GROUP/VERSION/KIND", help="The native kind the provider renders.")
@click.option(
    "--crd",
    "crd_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The kind's CustomResourceDefinition: vendored in the new folder's crds/, the strict schema and the template's spec come from it.",
)
@click.option("--operator", "operator", metavar="NAME", help="The operator's name (default: the provider's name).")
@click.option(
    "--operator-version",
    "operator_version",
    default="0.0.0",
    show_default=True,
    help="The operator release (the provider folder's crds/<version>/).",
)
@repo_option
def provider_new(name: str, kind: str, crd_file: Path | None, operator: str | None, operator_version: str, repo: Path) -> None:
    """Create providers/NAME/: a definition, provider.yaml, a template, schemas, an example cluster and cases that pass."""
    from everest_render.authoring.scaffold import ScaffoldError, parse_request, scaffold

    try:
        request = parse_request(name, kind, crd_file.read_text(encoding="utf-8") if crd_file else None, operator, operator_version)
    except ScaffoldError as error:
        raise click.UsageError(str(error)) from None
    if (repo / "providers" / name).exists():
        raise click.UsageError(f"providers/{name} already exists; choose another name or remove it")
    try:
        files = scaffold(request)
    except ScaffoldError as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_INVALID)
    for relative in files:
        target = repo / relative
        if target.exists():
            raise click.UsageError(f"{relative} already exists")
    for relative, text in files.items():
        target = repo / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {relative}", err=True)
    click.echo(f"next: everest-render provider test {name}  (docs/providers.md walks through the rest)", err=True)
    _finish(EXIT_OK)


@provider.command(
    "test",
    epilog=_epilog(
        [
            "everest-render provider test             # every provider's cases in the repository",
            "everest-render provider test valkey",
        ],
        ["0  every case holds", "1  a case does not hold (what differs is printed)", USAGE_CODE + " (also: no such provider, or no cases)"],
    ),
)
@click.argument("name", required=False)
@repo_option
def provider_test(name: str | None, repo: Path) -> None:
    """Run the case files of providers/NAME/cases/ (every provider's when NAME is omitted; built-ins' too)."""
    import tempfile

    from everest_render.load.files import builtin_root
    from everest_render.testing import provider_cases, run_case

    own = provider_cases(repo)
    builtin = provider_cases(builtin_root())
    if name is None:
        cases = own or builtin
    else:
        cases = [c for c in own if c.path.parent.parent.name == name] or [c for c in builtin if c.path.parent.parent.name == name]
        if not cases:
            known = sorted({c.path.parent.parent.name for c in [*own, *builtin]})
            raise click.UsageError(f"no cases for provider {name!r}; providers with cases: {', '.join(known) or 'none'}")
    failed = 0
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="everest-case-") as scratch:
            differences = run_case(case, Path(scratch))
        label = f"{case.path.parent.parent.name}/{case.path.name}"
        if differences:
            failed += 1
            click.echo(f"FAIL {label}: {case.name}")
            for difference in differences:
                click.echo(textwrap.indent(difference, "  "))
        else:
            click.echo(f"ok   {label}")
    click.echo(f"{len(cases) - failed} of {len(cases)} cases hold", err=True)
    _finish(exit_code(differences=failed > 0))


@main.command(
    epilog=_epilog(
        [
            'eval "$(everest-render completion bash)"     # in ~/.bashrc',
            'eval "$(everest-render completion zsh)"      # in ~/.zshrc',
            "everest-render completion fish > ~/.config/fish/completions/everest-render.fish",
        ],
        ["0  the script is on stdout", "2  usage error (a shell other than bash, zsh, fish)"],
    )
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish (click's shell completion)."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(main, {}, "everest-render", "_EVEREST_RENDER_COMPLETE").source())
    _finish(EXIT_OK)


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    from everest_render.diagnostics import format_path

    return {
        "file": diagnostic.file,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        "path": format_path(diagnostic.path),
    }


def _unlocated_json(message: str) -> dict[str, Any]:
    """A problem that is not in an input file: the same fields, without a position."""
    return {"file": None, "line": None, "column": None, "severity": "error", "message": message, "path": ""}


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))
