"""`argocd generate` and `argocd discover` without click, for the CMP server.

Argo CD's CMP server starts one process per manifest request, so what that process imports is
what every application's refresh pays (issue 12: at most 12x a bare interpreter start). The
entry point (commands/entry.py) sends exactly these two command lines here and everything else
to the click CLI, whose `argocd` commands call the same functions: one behaviour, one set of
messages and exit codes (API.md section 4), however the command is reached.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE, EXIT_INVALID = 0, 2, 3


def _error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate() -> int:
    """What the CMP server's generate command prints: the application's stream, or nothing and
    an exit code other than 0. Its stderr gets one line of what was rendered and how long it took."""
    import time

    from everest_render.commands.argocd import ChoiceError, application_source, read_choices
    from everest_render.parallel import available_cpus
    from everest_render.pipeline import Selection, read_repository, render_repository

    started = time.monotonic()
    try:
        choices = read_choices(os.environ)
        source = application_source(Path.cwd(), os.environ.get("ARGOCD_APP_SOURCE_PATH"))
    except ChoiceError as error:
        _error(f"error: {error}")
        return EXIT_USAGE
    selection = Selection(choices.only, (source.folder,) if source.folder else ())
    cache = open_cache(os.environ.get("EVEREST_RENDER_NO_CACHE", "").lower() in ("1", "true", "yes", "on"))
    result = render_repository(read_repository(source.root), selection, available_cpus(), cache)
    if cache is not None and cache.warning:
        _error(f"warning: {cache.warning}")
        cache.warning = None
    for diagnostic in result.diagnostics:
        _error(str(diagnostic))
    if result.failed:
        return EXIT_INVALID
    application = os.environ.get("ARGOCD_APP_NAME", "the application")
    known = {c.ref.namespace for c in result.resolved.clusters} | {str(c.ref) for c in result.resolved.clusters}
    known |= {p.namespace for p in result.resolved.inputs.passthrough}
    known |= {f"{p.namespace}/_shared" for p in result.resolved.inputs.passthrough}
    unmatched = [entry for entry in choices.only if entry not in known]
    if unmatched:
        # A mistyped entry would silently drop (and so prune) what the application meant.
        _error(f"error: {application}: only={' '.join(unmatched)} names no cluster or namespace of the repository")
        return EXIT_INVALID
    refused = sops_refused(result.plan, choices.sops)
    if refused:
        _error(f"error: {application}: {refused.replace('--sops ', 'sops=')}")
        return EXIT_INVALID
    from everest_render.emit.output import without_sops

    stream = (without_sops(result.plan) if choices.sops == "omit" else result.plan).stream()
    if not stream and not choices.allow_empty:
        asked = f" only={' '.join(choices.only)}" if choices.only else ""
        folder = f" under {source.folder}/" if source.folder else ""
        _error(
            f"error: {application} selects nothing{folder}{asked}: refusing an empty render (it would prune every database);"
            " set allow-empty=true if that is meant"
        )
        return EXIT_INVALID
    sys.stdout.buffer.write(stream)
    sys.stdout.flush()
    seconds = time.monotonic() - started
    _error(f"everest-render: {application}: {len(result.emitted)} objects, {len(stream)} bytes in {seconds:.2f} s")
    return EXIT_OK


def open_cache(no_cache: bool) -> Any:
    """The render cache (cache/store.py), or None when asked for none; one that cannot be
    written is off, and says why in its ``warning``."""
    if no_cache:
        return None
    from everest_render.cache.store import Store, default_location

    return Store.open(default_location(os.environ))


def discover() -> int:
    """The first file under the current directory holding a DatabaseCluster or an Instance,
    on stdout; nothing when there is none (the CMP server then does not use this plugin)."""
    from everest_render.commands.argocd import discover as find_input

    found = find_input(Path.cwd())
    if found is not None:
        print(found, flush=True)
    return EXIT_OK


def sops_refused(plan: Any, choice: str) -> str | None:
    """Why a stream may not hold the plan's SOPS files (nothing on the --stdout path, Argo CD's
    plugin included, decrypts them), or None."""
    from everest_render.emit.output import is_sops_file

    found = [path for path in plan.files if is_sops_file(path)]
    if not found or choice != "refuse":
        return None
    return (
        f"the stream would hold {len(found)} SOPS-encrypted file{'s' if len(found) != 1 else ''} ({', '.join(found)}) that nothing"
        " on this path decrypts: choose --sops omit (leave them out) or --sops keep (a plugin decrypts them)"
    )
