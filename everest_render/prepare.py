"""`python -m everest_render.prepare`: what a build does once so that every run starts faster.

It compiles the built-in providers' templates into the package (render/prepared.py says how
they are checked before use). The Dockerfile runs it before building the wheel, `make bench`
before measuring; a checkout without it renders the same bytes, only slower to start.
"""

from __future__ import annotations

import sys

from everest_render.load.files import read_builtins
from everest_render.pipeline import _load_and_parse
from everest_render.render.prepared import PREPARED_FILE, prepare
from everest_render.render.templates import sandbox


def main() -> int:
    builtins = read_builtins()
    _, parsed, _ = _load_and_parse(builtins, ())
    # Every template in the folder: the ones spec.templates lists and those they import or include.
    environments = [(sandbox(provider), sorted(provider.assets.templates)) for provider in parsed.providers]
    count = prepare(environments)
    print(f"prepared {count} templates of {len(environments)} built-in providers in {PREPARED_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
