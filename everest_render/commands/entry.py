"""The `everest-render` executable: the Argo CD plugin's two command lines go straight to
commands/plugin.py, everything else to the click CLI (commands/cli.py).

The CMP server runs `everest-render argocd generate` (and `discover`) as a fresh process for
every manifest request; importing click and building the whole CLI would be a sixth of that
process. Only the exact command lines plugin.yaml runs take the short way: any option, --help
or extra argument goes to click, which answers as it always does.
"""

from __future__ import annotations

import gc
import sys

PLUGIN_COMMANDS = ("generate", "discover")


def main() -> None:
    from everest_render import prepared_patterns

    prepared_patterns.install()  # before any module compiles its patterns
    from everest_render import prepared_code

    prepared_code.install()  # before any class of the package is defined
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "argocd" and arguments[1] in PLUGIN_COMMANDS:
        # As the CLI's group does: a short batch over acyclic data needs no cyclic collector.
        gc.disable()
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
        sys.exit(code)
    from everest_render.commands.cli import main as cli

    try:
        cli()
    finally:
        # As above: click ends every command with SystemExit, and what is alive then lives until
        # the process ends (1-2% of a 10,000-cluster render's instructions, replayed or not).
        gc.freeze()
