"""The command line: options in, one pipeline call, diagnostics and data out.

Data goes to stdout, diagnostics to stderr. Exit codes (API.md section 4) are decided in
`exit_code` only: 0 success, 1 differences found, 2 usage error, 3 invalid input.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from everest_render.diagnostics import Diagnostic

EXIT_OK, EXIT_DIFFERENCES, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3


def exit_code(*, failed: bool = False, differences: bool = False) -> int:
    if failed:
        return EXIT_INVALID
    if differences:
        return EXIT_DIFFERENCES
    return EXIT_OK


def _report(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        click.echo(str(diagnostic), err=True)


def _finish(code: int) -> NoReturn:
    sys.exit(code)


repo_option = click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    envvar="EVEREST_RENDER_REPO",
    show_envvar=True,
    help="The GitOps repository to read.",
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


jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of CPUs",
    envvar="EVEREST_RENDER_JOBS",
    show_envvar=True,
    help="Processes to render a large fleet on (the output does not depend on it).",
)
kustomization_option = click.option(
    "--kustomization",
    is_flag=True,
    envvar="EVEREST_RENDER_KUSTOMIZATION",
    show_envvar=True,
    help="Also write out/kustomization.yaml listing every rendered file.",
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="EVEREST_RENDER_FORMAT",
    show_envvar=True,
    help="Output format.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="everest-render")
def main() -> None:
    """Render OpenEverest DatabaseClusters into native operator manifests."""
    # A command is a short batch over acyclic data: the cyclic collector would only re-walk the
    # growing object graph (about 10% of a 1,000-cluster render). Memory is freed at exit.
    gc.disable()


@main.command()
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
@jobs_option
def render(repo: Path, out_dir: Path | None, to_stdout: bool, check: bool, kustomization: bool, only: tuple[str, ...], jobs: int) -> None:
    """Render every DatabaseCluster of the repository into out/."""
    from everest_render.emit.output import OutputError, differences, with_kustomization, write_output
    from everest_render.pipeline import Selection, read_repository, render_repository

    if only and not to_stdout:
        raise click.UsageError("--only selects what --stdout prints; out/ always holds every cluster")
    out_dir = out_dir if out_dir is not None else repo / "out"
    result = render_repository(read_repository(repo, out_dir), Selection(only) if only else None, jobs)
    _report(result.diagnostics)
    if result.failed:
        _finish(exit_code(failed=True))
    plan = with_kustomization(result.plan) if kustomization else result.plan
    if only and not result.plan.files:
        # An empty stream would make Argo CD prune the application's databases.
        click.echo(f"error: --only {' '.join(only)} selects no cluster or namespace of {repo}", err=True)
        _finish(EXIT_INVALID)
    if to_stdout:
        sys.stdout.buffer.write(plan.stream())
        sys.stdout.flush()
        _finish(EXIT_OK)
    if check:
        changes = differences(plan, out_dir)
        for change in changes:
            status, path = change.split(": ", 1)
            click.echo(f"{status}: {(out_dir / path).as_posix()}", err=True)
        _finish(exit_code(differences=bool(changes)))
    try:
        write_output(plan, out_dir)
    except OutputError as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_INVALID)
    _finish(EXIT_OK)


@main.command()
@repo_option
@format_option
@jobs_option
def validate(repo: Path, output_format: str, jobs: int) -> None:
    """Load, validate and render everything in memory; write nothing."""
    from everest_render.pipeline import read_repository, render_repository

    result = render_repository(read_repository(repo), jobs=jobs)
    _report(result.diagnostics)
    if output_format == "json":
        _print_json(
            {
                "valid": not result.failed,
                "clusters": sorted(str(c.ref) for c in result.resolved.clusters),
                "diagnostics": [_diagnostic_json(d) for d in result.diagnostics],
            }
        )
    _finish(exit_code(failed=result.failed))


@main.command()
@click.argument("cluster")
@repo_option
@format_option
def explain(cluster: str, repo: Path, output_format: str) -> None:
    """Show how NAMESPACE/NAME resolves: provider, topology, versions, images and every default."""
    from everest_render.commands.explain import explain_json, explain_text, find_cluster
    from everest_render.pipeline import read_repository, resolve_repository

    if cluster.count("/") != 1:
        raise click.BadParameter("expected NAMESPACE/NAME", param_hint="CLUSTER")
    result = resolve_repository(read_repository(repo))
    _report(result.diagnostics)
    found = find_cluster(result, cluster)
    if found is None:
        if not result.failed:
            click.echo(f"error: no DatabaseCluster {cluster} in {repo}", err=True)
        _finish(EXIT_INVALID)
    if output_format == "json":
        _print_json(explain_json(found, result.catalog))
    else:
        click.echo(explain_text(found, result.catalog), nl=False)
    _finish(exit_code(failed=result.failed))


@main.command()
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
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    envvar="EVEREST_RENDER_FORMAT",
    show_envvar=True,
    help="Output format.",
)
@jobs_option
def diff(repo: Path, out_dir: Path | None, revision: str | None, live: bool, output_format: str, kustomization: bool, jobs: int) -> None:
    """Show what rendering would change: in out/ (default), since a git revision, or in the cluster."""
    from everest_render.commands.baselines import CompareError, against_live, against_out, against_revision
    from everest_render.commands.diff import FORMATS
    from everest_render.pipeline import read_repository, render_repository

    if revision is not None and live:
        raise click.UsageError("--against and --live exclude each other")
    out_dir = out_dir if out_dir is not None else repo / "out"
    result = render_repository(read_repository(repo, out_dir), jobs=jobs)
    _report(result.diagnostics)
    if result.failed:
        _finish(EXIT_INVALID)
    try:
        if live:
            changes = against_live(result)
        elif revision is not None:
            changes = against_revision(result, repo, revision, report=lambda line: click.echo(line, err=True))
        else:
            changes = against_out(result, out_dir, kustomization=kustomization)
    except CompareError as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_INVALID)
    click.echo(FORMATS[output_format](changes), nl=False)
    _finish(exit_code(differences=bool(changes)))


@main.command()
def krm() -> None:
    """Run as a KRM function: a ResourceList on stdin, the rendered ResourceList on stdout."""
    from everest_render.commands.krm import run_function

    output, failed = run_function(sys.stdin.read())
    sys.stdout.write(output)
    _finish(EXIT_DIFFERENCES if failed else EXIT_OK)


@main.group()
def argocd() -> None:
    """Argo CD's config management plugin (deploy/argocd/plugin.yaml runs these)."""


@argocd.command("generate")
def argocd_generate() -> None:
    """Print the application's objects: exactly what render --stdout prints for its selection.

    Run by the CMP server in the application's directory. The repository root is that
    directory minus ARGOCD_APP_SOURCE_PATH; an application below the root renders only the
    clusters written in files under its directory. Choices (plugin env ARGOCD_ENV_<NAME>,
    parameters PARAM_<NAME> or ARGOCD_APP_PARAMETERS, all the same): only (namespaces or
    namespace/name, separated by spaces, commas or newlines), allow-empty (true to accept a
    render with no object, which prunes every database of the application).

    \b
    Exit codes: 0 rendered, 2 the application's choices are contradictory or malformed,
    3 invalid input or an empty render (nothing is printed on stdout).
    """
    import time

    from everest_render.commands.argocd import ChoiceError, application_source, available_cpus, read_choices
    from everest_render.pipeline import Selection, read_repository, render_repository

    started = time.monotonic()
    try:
        choices = read_choices(os.environ)
        source = application_source(Path.cwd(), os.environ.get("ARGOCD_APP_SOURCE_PATH"))
    except ChoiceError as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_USAGE)
    selection = Selection(choices.only, (source.folder,) if source.folder else ())
    result = render_repository(read_repository(source.root), selection, available_cpus())
    _report(result.diagnostics)
    if result.failed:
        _finish(EXIT_INVALID)
    application = os.environ.get("ARGOCD_APP_NAME", "the application")
    known = {c.ref.namespace for c in result.resolved.clusters} | {str(c.ref) for c in result.resolved.clusters}
    known |= {p.namespace for p in result.resolved.inputs.passthrough}
    unmatched = [entry for entry in choices.only if entry not in known]
    if unmatched:
        # A mistyped entry would silently drop (and so prune) what the application meant.
        click.echo(f"error: {application}: only={' '.join(unmatched)} names no cluster or namespace of the repository", err=True)
        _finish(EXIT_INVALID)
    stream = result.plan.stream()
    if not stream and not choices.allow_empty:
        asked = f" only={' '.join(choices.only)}" if choices.only else ""
        folder = f" under {source.folder}/" if source.folder else ""
        click.echo(
            f"error: {application} selects nothing{folder}{asked}: refusing an empty render (it would prune every database);"
            " set allow-empty=true if that is meant",
            err=True,
        )
        _finish(EXIT_INVALID)
    sys.stdout.buffer.write(stream)
    sys.stdout.flush()
    seconds = time.monotonic() - started
    click.echo(f"everest-render: {application}: {len(result.objects)} objects, {len(stream)} bytes in {seconds:.2f} s", err=True)
    _finish(EXIT_OK)


@argocd.command("discover")
def argocd_discover() -> None:
    """Print the first file that holds a DatabaseCluster or an Instance under the current
    directory (the CMP server uses this plugin when something is printed); print nothing otherwise.

    \b
    Exit code: 0 (whether or not anything was found).
    """
    from everest_render.commands.argocd import discover

    found = discover(Path.cwd())
    if found is not None:
        click.echo(found)
    _finish(EXIT_OK)


@main.command()
@repo_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 naming each stale schema.")
def schemas(repo: Path, check: bool) -> None:
    """Generate the providers' strict schemas from the CRDs vendored under crds/<operator>/<version>/."""
    from everest_render.authoring.crd_schema import MissingCrd, expected_schemas

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
    except MissingCrd as error:
        click.echo(f"error: {error}", err=True)
        _finish(EXIT_INVALID)
    for relative in stale:
        click.echo(f"stale: {relative} (run everest-render schemas)", err=True)
    _finish(exit_code(differences=bool(stale)))


@main.group()
def providers() -> None:
    """Providers and definitions in effect."""


@providers.command("list")
@repo_option
@format_option
def providers_list(repo: Path, output_format: str) -> None:
    """List providers, their definitions, topologies and versions (built-in or the repository's)."""
    from everest_render.commands.explain import providers_json, providers_text
    from everest_render.pipeline import read_repository, resolve_repository

    result = resolve_repository(read_repository(repo))
    # An empty clusters/ folder is fine for listing providers.
    problems = [d for d in result.diagnostics if d.file != "clusters"]
    _report(problems)
    if result.catalog is None:
        _finish(EXIT_INVALID)
    if output_format == "json":
        _print_json(providers_json(result.catalog))
    else:
        click.echo(providers_text(result.catalog), nl=False)
    _finish(exit_code(failed=any(d.is_error for d in problems)))


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


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))
