"""`python -m everest_render.prepare`: what a build does once so that every run starts faster.

It compiles, into the package's `_prepared/` folder, the built-in providers' templates
(render/prepared.py), the methods dataclasses generates for every class of the package
(prepared_code.py) and the regular expressions the package and its libraries compile
(prepared_patterns.py), the built-in definitions, providers and extensions loaded and parsed,
the input schemas built and the built-in object schemas parsed (prepared_builtins.py); each
is checked before use. The Dockerfile runs it before building the
wheel, `make prepare` (and so `make bench`) in a checkout; without it a run renders the same
bytes, only slower to start.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

import everest_render
from everest_render import prepared_code, prepared_patterns


def main() -> int:
    # Recording starts before any module of the package defines a class.
    table = prepared_code.record()
    patterns, stop_recording = prepared_patterns.record()
    for module in pkgutil.walk_packages(everest_render.__path__, "everest_render."):
        if module.name != "everest_render.__main__":
            importlib.import_module(module.name)
    from everest_render import package_files, prepared_builtins
    from everest_render.cache.snapshot import now, settled
    from everest_render.load.files import read_repository_files, read_text
    from everest_render.model import TemplateSource
    from everest_render.parse.inputs import input_kinds, input_schema
    from everest_render.pipeline import parse_builtins
    from everest_render.render.prepared import PREPARED_FILE, prepare
    from everest_render.render.templates import sandbox

    started = now()  # before any file is looked at: the stat record's racy rule
    # Before they are read: a file edited in between then differs from the digest, not the texts.
    tree = package_files.builtin_tree_digest()
    with tempfile.TemporaryDirectory() as empty:
        # The built-ins exactly as a run reads them (a reader: read, not taken as prepared before).
        files = read_repository_files(Path(empty), reader=read_text)
    builtins = parse_builtins(files, prepared=False)
    parsed = builtins[1]
    # Every template in the folder: the ones spec.templates lists and those they import or include.
    # And the built-in extensions' templates, which a render with them turned on compiles too.
    extensions: list[TemplateSource] = [extension for extension, _ in builtins[2].values() if extension is not None]
    environments = [(sandbox(source), sorted(source.assets.templates)) for source in (*parsed.providers, *extensions)]
    # And each provider's checks and spec.secrets expressions, which a render compiles from their
    # text (templates.py ProviderRenderer; the Secrets are asked for when an extension applies).
    checks = [
        (
            sandbox(provider),
            [
                *(snippet for c in provider.checks for snippet in (("expression", c["require"]), ("string", c["message"]))),
                *(("expression", s[field]) for s in provider.secrets for field in ("when", "forEach", "name") if field in s),
            ],
        )
        for provider in parsed.providers
    ]
    count = prepare(environments, snippets=checks)
    stop_recording()
    prepared_code.write(table)
    inputs = (files.builtin, tuple(f for f in files.extensions if f.builtin))
    prepared_builtins.write(inputs, builtins, tree=None if files.extensions_unreadable else tree)
    kinds = input_kinds()
    sources: list[TemplateSource] = [*parsed.providers, *extensions]
    schemas = {f"{source.folder}/{name}": text for source in sources for name, text in source.assets.schemas.items()}
    prepared_builtins.write_object_schemas(schemas)
    prepared_builtins.write_input_schemas({kind: input_schema(kind) for kind in kinds})
    compiled = prepared_patterns.write(patterns)
    recorded = package_files.write_stat_record(lambda found: settled(found, started))
    print(f"prepared {count} templates of {len(environments)} built-in providers and extensions in {PREPARED_FILE}", file=sys.stderr)
    print(f"prepared {len(table)} dataclass methods in {prepared_code.PREPARED_FILE}", file=sys.stderr)
    print(f"prepared {compiled} regular expressions in {prepared_patterns.PREPARED_FILE}", file=sys.stderr)
    print(f"prepared {len(files.builtin.sources)} built-in files parsed in {prepared_builtins.PREPARED_FILE}", file=sys.stderr)
    print(f"prepared {len(kinds)} input schemas in {prepared_builtins.SCHEMAS_FILE}", file=sys.stderr)
    print(f"prepared {len(schemas)} object schemas in {prepared_builtins.OBJECT_SCHEMAS_FILE}-*.marshal", file=sys.stderr)
    print(f"recorded the stat of {recorded} package and built-in files in {package_files.STAT_RECORD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
