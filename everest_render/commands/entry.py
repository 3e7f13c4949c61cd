"""The `everest-render` executable: the Argo CD plugin's two command lines go straight to
commands/plugin.py, everything else to the click CLI (commands/cli.py).

The CMP server runs `everest-render argocd generate` (and `discover`) as a fresh process for
every manifest request; importing click and building the whole CLI would be a sixth of that
process. Only the exact command lines plugin.yaml runs take the short way: any option, --help
or extra argument goes to click, which answers as it always does.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import NoReturn

PLUGIN_COMMANDS = ("generate", "discover")


def main() -> None:
    # As the CLI's group does, from the first import on: a short batch over acyclic data needs no
    # cyclic collector, and importing the package, click and their libraries made it run dozens
    # of times over the growing heap of classes and functions (1% of a replayed render's
    # instructions at 10,000 clusters, 2% of a one-cluster `argocd generate`).
    gc.disable()
    from everest_render import prepared_patterns

    prepared_patterns.install()  # before any module compiles its patterns
    from everest_render import prepared_code

    prepared_code.install()  # before any class of the package is defined
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "argocd" and arguments[1] in PLUGIN_COMMANDS:
        from everest_render.commands import plugin

        # Interrupted or cut off, it answers as click's standalone mode does: exit 1.
        try:
            code = plugin.generate() if arguments[1] == "generate" else plugin.discover()
        except KeyboardInterrupt:
            print("\nAborted!", file=sys.stderr)
            code = 1
        except BrokenPipeError:
            code = 1
        # What is alive now lives until the process ends: frozen, the interpreter's last
        # collection at exit need not walk it (a tenth of a one-cluster start-up's instructions).
        gc.freeze()
        end(code)
    from everest_render.commands.cli import main as cli

    status: str | int | None = 0
    try:
        cli()
    except SystemExit as done:
        status = done.code
    finally:
        # As above: click ends every command with SystemExit, and what is alive then lives until
        # the process ends (1-2% of a 10,000-cluster render's instructions, replayed or not).
        gc.freeze()
    end(status)


def end(code: str | int | None) -> NoReturn:
    """End the process with ``code`` as `sys.exit` does. When nothing is left for the exit to
    run (no atexit callback, no other thread), the standard streams are flushed and the process
    ends there (`os._exit`): the interpreter's teardown would only free, one by one, what the
    run made (1.5% of a replayed render's CPU at 10,000 clusters). Every file a run writes is
    closed by then (written in a `with` block, renamed into place). A code `sys.exit` would
    print, or streams that do not flush (a closed pipe), take the ordinary exit, which reports
    them as always."""
    if (code is None or (isinstance(code, int) and 0 <= code <= 255)) and _nothing_left_at_exit():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # the ordinary exit flushes them again and reports it, as always
            pass
        else:
            os._exit(code or 0)
    sys.exit(code)


def _nothing_left_at_exit() -> bool:
    callbacks = getattr(atexit, "_ncallbacks", None)  # CPython's; elsewhere, the ordinary exit
    if callbacks is None or callbacks() != 0:
        return False
    threading = sys.modules.get("threading")  # not loaded: no other thread was started
    return threading is None or threading.active_count() == 1
