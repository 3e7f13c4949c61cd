"""Issue 12's start-up work: what the plugin path imports, the templates prepared at build time,
and the CRD schemas narrowed to the objects checked. Each shortcut must give what the long way gives."""

from __future__ import annotations

import copy
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from everest_render.render import prepared
from everest_render.schema_check import _APPLICATORS, compile_schema, deferred, schema_for, schema_problems
from tests.conftest import PROJECT_ROOT, mongodb

# Imported by the commands that need them, never by a render (pyproject.toml says why each is there).
NOT_ON_THE_RENDER_PATH = ("click", "deepdiff", "kr8s", "jsonschema")


# What a run whose clusters all come from the cache does not import: the render stage.
RENDER_STAGE = ("jinja2", "everest_render.render", "everest_render.check.crd", "everest_render.check.cel_rules")
# What a repository of DatabaseClusters applying no extension does not import: foreign input
# APIs' translators (eras/__init__.py) and the extensions' renderer.
NOT_FOR_THIS_REPOSITORY = ("everest_render.eras.openeverest", "everest_render.extend.render")


def run_twice(tmp_path: Path, argv: list[str], report: str) -> list[subprocess.CompletedProcess[str]]:
    """The command ``argv`` run twice in fresh processes over a one-cluster repository (the
    second with the cache the first filled), each printing ``report`` (its exit code ``code``
    and the modules it loaded at hand) as its last line of stderr, at exit (an atexit callback:
    the process takes the ordinary exit, entry.end)."""
    (tmp_path / "repo/clusters").mkdir(parents=True)
    (tmp_path / "repo/clusters/orders.yaml").write_text(mongodb())
    script = (
        "import atexit, sys\n"
        f"sys.argv = {['everest-render', *argv]!r}\n"
        "from everest_render.commands.entry import main\n"
        "code = None\n"
        "@atexit.register\n"
        "def report():\n"
        f"    print({report}, file=sys.stderr)\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "    raise\n"
    )
    environment = {**os.environ, "EVEREST_RENDER_CACHE": str(tmp_path / "cache")}
    return [
        subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "repo", env=environment, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]


def test_argocd_generate_imports_no_cli_framework_and_no_diff_or_cluster_library(tmp_path):
    first, again = run_twice(
        tmp_path,
        ["argocd", "generate"],
        f"code, sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_ON_THE_RENDER_PATH)!r}), "
        f"any(m.startswith({RENDER_STAGE!r}) for m in sys.modules), "
        f"sorted(m for m in sys.modules if m.startswith({NOT_FOR_THIS_REPOSITORY!r}))",
    )
    assert first.stdout.startswith("---\napiVersion: psmdb.percona.com/v1\n") and again.stdout == first.stdout
    # Nor what only other repositories need: it holds no foreign input and applies no extension.
    assert first.stderr.splitlines()[-1] == "0 [] True []"
    assert again.stderr.splitlines()[-1] == "0 [] False []"  # the cluster came from the cache


# What a render replayed from the cache (no input changed) does not import: any stage, the model's
# classes, the YAML and schema libraries (incremental.py; a sixth of such a run at 10,000 clusters).
NOT_ON_A_REPLAY = (
    "yaml",
    "jsonschema_rs",
    "jinja2",
    "everest_render.model",
    "everest_render.check",
    "everest_render.pipeline",
    "everest_render.load.documents",
    "everest_render.parse",
    "everest_render.resolve.cluster",
    "everest_render.render",
    "everest_render.extend",
)


def test_a_render_replayed_from_the_cache_imports_no_stage(tmp_path):
    first, again = run_twice(
        tmp_path, ["render", "--kustomization"], f"code, sorted(m for m in sys.modules if m.startswith({NOT_ON_A_REPLAY!r}))"
    )
    assert "'everest_render.pipeline'" in first.stderr.splitlines()[-1]  # it rendered
    assert again.stderr.splitlines()[-2:] == ["everest-render: 1 cluster rendered; 0 files written, 2 unchanged, 0 removed", "0 []"]


@pytest.mark.parametrize(
    ("argv", "stubbed", "code"),
    [
        # The plugin's path (entry.main's own, before click): a tenth of a one-cluster start-up.
        (["argocd", "discover"], ("everest_render.commands.plugin", "discover"), 0),
        # Every other command, through click: 1-2% of a render at 10,000 clusters, replayed or not.
        (["render"], ("everest_render.commands.cli", "main"), 3),
    ],
)
def test_a_command_exits_with_what_it_made_frozen_for_the_collection_at_exit(monkeypatch, argv, stubbed, code):
    # The interpreter collects everything at exit, gc disabled or not, for a process about to
    # end. Frozen objects are out of its sight.
    import gc
    import importlib

    from everest_render import prepared_code, prepared_patterns
    from everest_render.commands import entry

    def command() -> int:
        if code:
            raise SystemExit(code)  # as click ends a command
        return code

    monkeypatch.setattr(sys, "argv", ["everest-render", *argv])
    monkeypatch.setattr(importlib.import_module(stubbed[0]), stubbed[1], command)
    monkeypatch.setattr(prepared_patterns, "install", lambda: None)  # not this test process's business
    monkeypatch.setattr(prepared_code, "install", lambda: None)
    monkeypatch.setattr(entry, "_nothing_left_at_exit", lambda: False)  # the ordinary exit: this process goes on
    enabled = gc.isenabled()
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as done:
            entry.main()
        assert done.value.code == code and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@pytest.mark.parametrize(
    ("left", "code", "stderr"),
    [
        ("", 3, ""),  # nothing left to run: no teardown
        ("import atexit; atexit.register(print, 'callback ran', file=sys.stderr)", 3, "callback ran\ntorn down\n"),
        ("import threading; threading.Thread(target=lambda: time.sleep(0.2) or print('thread ran', file=sys.stderr)).start()", 0, "thread ran\ntorn down\n"),
        ("", "a message", "a message\ntorn down\n"),  # what sys.exit prints: the ordinary exit prints it
    ],
)
def test_a_command_ends_without_the_teardown_only_when_the_exit_has_nothing_else_to_run(left, code, stderr):
    script = (
        "import sys, time\n"
        "class Kept:\n"
        "    def __del__(self):\n"
        "        print('torn down', file=sys.stderr)\n"
        "kept = Kept()\n"
        f"{left}\n"
        "from everest_render.commands.entry import end\n"
        "sys.stdout.write('written, not yet flushed')\n"
        f"end({code!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout == "written, not yet flushed" and done.stderr == stderr
    assert done.returncode == (code if isinstance(code, int) else 1)


@pytest.mark.parametrize("argv", [["--version"], ["argocd", "discover"]])
def test_the_executable_never_runs_the_cyclic_collector(tmp_path, argv):
    # Disabled before the first import (entry.main), not only once click calls the group.
    script = (
        "import atexit, gc, sys\n"
        f"sys.argv = {['everest-render', *argv]!r}\n"
        "from everest_render.commands.entry import main\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: runs.append(phase))\n"
        "atexit.register(lambda: print(len(runs), file=sys.stderr))  # before the exit's own collection\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.stderr.splitlines()[-1] == "0", done.stderr


def test_the_foreign_apis_are_named_as_their_translators_name_them():
    from everest_render import eras
    from everest_render.eras import openeverest_instance, openeverest_provider

    assert set(eras.FOREIGN_APIS) == {(openeverest_instance.API_VERSION, openeverest_instance.KIND)}
    assert set(eras.FOREIGN_DEFINITIONS) == {(openeverest_provider.API_VERSION, openeverest_provider.KIND)}


# --- templates prepared at build time ----------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_providers():
    from everest_render.load.files import read_builtins
    from everest_render.pipeline import _load_and_parse

    _, parsed, _ = _load_and_parse(read_builtins(), ())
    return {provider.name: provider for provider in parsed.providers}


def _psmdb_environment(builtin_providers):
    from everest_render.render.limits import BoundedSandbox
    from everest_render.render.templates import sandbox

    env = sandbox(builtin_providers["percona-server-mongodb"], BoundedSandbox, {"cache_size": 0})
    env.bytecode_cache = None
    return env


def test_prepared_templates_are_used_and_give_what_compiling_gives(tmp_path, builtin_providers, monkeypatch):
    provider = builtin_providers["percona-server-mongodb"]
    names = sorted(provider.assets.templates)
    file = tmp_path / "templates.marshal"
    assert prepared.prepare([(_psmdb_environment(builtin_providers), names)], file) == len(names)
    env = _psmdb_environment(builtin_providers)
    cache = prepared.prepared_for(env, file)
    assert cache is not None
    monkeypatch.setattr(env, "compile", lambda *args, **kwargs: pytest.fail(f"compiled {args[1]} although it was prepared"))
    env.bytecode_cache = cache
    fresh = _psmdb_environment(builtin_providers)
    for name in names:
        loaded, reference = env.get_template(name), fresh.get_template(name)
        assert loaded.filename == reference.filename  # errors name the template, not the cache
        assert loaded.root_render_func.__code__.co_code == reference.root_render_func.__code__.co_code


def test_prepared_templates_are_ignored_when_anything_differs(tmp_path, builtin_providers):
    provider = builtin_providers["percona-server-mongodb"]
    name = next(n for n in provider.templates)
    file = tmp_path / "templates.marshal"
    prepared.prepare([(_psmdb_environment(builtin_providers), [name])], file)
    # Another lexer setting: another fingerprint, so the file is not used at all.
    other = _psmdb_environment(builtin_providers)
    other.trim_blocks = False
    assert prepared.prepared_for(other, file) is None
    # An edited template: its checksum differs, Jinja compiles it as if there were no file.
    env = _psmdb_environment(builtin_providers)
    env.bytecode_cache = prepared.prepared_for(env, file)
    edited = env.loader.templates  # type: ignore[union-attr]
    env.loader.templates = {**edited, name: "edited: {{ 1 + 1 }}\n"}  # type: ignore[union-attr]
    assert env.get_template(name).render() == "edited: 2\n"
    # A file for another Python (or no file, or garbage): never used.
    content = {**_read(file), "python": b"\x00\x00\r\n"}
    file.write_bytes(__import__("marshal").dumps(content))
    prepared._loaded.clear()
    assert prepared.prepared_for(_psmdb_environment(builtin_providers), file) is None
    file.write_bytes(b"not marshal data")
    prepared._loaded.clear()
    assert prepared.prepared_for(_psmdb_environment(builtin_providers), file) is None
    assert prepared.prepared_for(_psmdb_environment(builtin_providers), tmp_path / "missing") is None


def test_prepared_provider_checks_are_what_jinja_compiles_and_are_used(tmp_path, builtin_providers, monkeypatch):
    provider = builtin_providers["percona-server-mongodb"]
    snippets = [s for c in provider.checks for s in (("expression", c["require"]), ("string", c["message"]))]
    broken = [("expression", "replicas >"), ("string", "{% if %}")]  # compiled by a run, which says why
    file = tmp_path / "templates.marshal"
    prepared.prepare([], file, [(_psmdb_environment(builtin_providers), [*snippets, *broken])])
    env = _psmdb_environment(builtin_providers)
    env.bytecode_cache = prepared.prepared_for(env, file)
    stored = env.bytecode_cache.snippets  # type: ignore[union-attr]
    assert set(stored) == set(snippets)
    fresh = _psmdb_environment(builtin_providers)
    caught: list = []
    monkeypatch.setattr(fresh, "_compile", lambda text, name, _c=fresh._compile: caught.append(_c(text, name)) or caught[-1])
    for kind, source in snippets:
        (fresh.compile_expression if kind == "expression" else fresh.from_string)(source)
        assert prepared.marshal.loads(stored[(kind, source)]) == caught[-1]
    monkeypatch.setattr(env, "compile", lambda *args, **kwargs: pytest.fail("compiled a prepared check"))
    for replicas in (1, 2, 3):
        context = {"cluster": {"allowUnsafeConfiguration": False}, "components": {"engine": {"replicas": replicas}}}
        check = provider.checks[0]
        assert prepared.compile_expression(env, check["require"])(**context) == fresh.compile_expression(check["require"])(**context)
        assert prepared.from_string(env, check["message"]).render(context) == fresh.from_string(check["message"]).render(context)
    # Not prepared (an edited check, another environment): compiled, and a syntax error is raised as Jinja raises it.
    monkeypatch.undo()
    assert prepared.compile_expression(env, "1 + 1")() == 2
    with pytest.raises(prepared.jinja2.TemplateSyntaxError):
        prepared.compile_expression(env, "replicas >")
    assert prepared.from_string(fresh, provider.checks[0]["message"]).render(components={"engine": {"replicas": 2}}).endswith(
        "set spec.allowUnsafeConfiguration"
    )


def _read(file: Path) -> dict:
    return __import__("marshal").loads(file.read_bytes())


# --- CRD schemas narrowed to the objects checked -----------------------------------------------


def _errors(validator, instance):
    return [(p.path, p.message, p.at_key, p.missing) for p in schema_problems(validator, instance)]


def test_a_narrowed_schema_gives_the_whole_schemas_verdicts_and_messages():
    schema = json.loads((PROJECT_ROOT / "providers/percona-server-mongodb/schemas/PerconaServerMongoDB.json").read_text())
    schema.pop("x-everest-render-cel-rules", None)
    good = {
        "apiVersion": "psmdb.percona.com/v1",
        "kind": "PerconaServerMongoDB",
        "metadata": {"name": "orders", "namespace": "shop", "labels": {"team": "a"}},
        "spec": {
            "crVersion": "1.20.0",
            "image": "percona/percona-server-mongodb:7.0",
            "replsets": [{"name": "rs0", "size": 3, "resources": {"limits": {"cpu": "1", "memory": "4G"}}, "expose": {"enabled": True}}],
        },
    }
    variants = [good]
    for change in (
        lambda o: o["spec"].update(imagee="x"),  # an unknown field: one line, with the field it may mean
        lambda o: o["spec"]["replsets"][0].update(size="three"),  # a wrong type inside an array item
        lambda o: o["spec"]["replsets"][0].pop("name"),  # a missing required field
        lambda o: o["spec"]["replsets"][0]["resources"]["limits"].update(cpu="lots"),  # a quantity (anyOf)
        lambda o: o["metadata"].update(name="Not A Name"),  # a pattern
        lambda o: o["spec"]["replsets"].append({"name": "rs1", "size": 1, "affinity": {"antiAffinityTopologyKey": 3}}),
        lambda o: o["spec"].update(replsets={"not": "a list"}),
    ):
        variant = copy.deepcopy(good)
        change(variant)
        variants.append(variant)
    whole = compile_schema(schema)
    stored = deferred(schema)  # as the built-ins' schemas are prepared: the same narrowing, unmarshalled as reached
    for variant in variants:
        narrowed = compile_schema(schema_for(schema, [variant]))
        assert _errors(narrowed, variant) == _errors(whole, variant), variant
        assert schema_for(stored, [variant]) == schema_for(schema, [variant])
    assert _undeferred(stored) == schema
    # One schema narrowed for several objects serves each of them.
    together = compile_schema(schema_for(schema, variants))
    assert [_errors(together, v) for v in variants] == [_errors(whole, v) for v in variants]
    assert len(json.dumps(schema_for(schema, [good]))) < len(json.dumps(schema)) / 10


def _undeferred(schema):
    """The schema `deferred` was given, whole: each marshalled subschema unmarshalled."""
    if isinstance(schema, bytes):
        schema = marshal.loads(schema)
    if not isinstance(schema, dict) or _APPLICATORS.intersection(schema):
        return schema
    whole = dict(schema)
    if isinstance(schema.get("properties"), dict):
        whole["properties"] = {name: _undeferred(sub) for name, sub in schema["properties"].items()}
    for keyword in ("additionalProperties", "items", "not"):
        if keyword in schema:
            whole[keyword] = _undeferred(schema[keyword])
    for keyword in ("anyOf", "allOf", "oneOf"):
        if isinstance(schema.get(keyword), list):
            whole[keyword] = [_undeferred(branch) for branch in schema[keyword]]
    return whole


# --- dataclass methods prepared at build time ----------------------------------------------------


def test_prepared_dataclass_code_is_what_compiling_the_same_text_gives(tmp_path, monkeypatch):
    import dataclasses

    from everest_render import prepared_code

    monkeypatch.setattr(dataclasses, "exec", exec, raising=False)  # undone after the test
    table = prepared_code.record()

    def define():
        @dataclasses.dataclass(frozen=True)
        class Ref:
            namespace: str
            name: str = "db"

        return Ref

    recorded = define()
    assert len(table) == 6  # __init__, __repr__, __eq__, __hash__, __setattr__, __delattr__
    prepared_code.write(table, tmp_path / "dataclasses.marshal")
    assert prepared_code.install(tmp_path / "dataclasses.marshal")
    used = []
    monkeypatch.setattr(prepared_code.marshal, "loads", lambda data, _loads=prepared_code.marshal.loads: used.append(1) or _loads(data))
    prepared = define()
    assert len(used) == 6  # every method came from the file
    for text, code in prepared_code.load(tmp_path / "dataclasses.marshal").items():
        assert prepared_code.marshal.loads(code) == compile(text, "<string>", "exec", dont_inherit=True)
    a, b = prepared("shop"), recorded("shop")
    assert (repr(a), hash(a), a == prepared("shop"), a.name) == (repr(b), hash(b), True, "db")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "x"  # type: ignore[misc]


def test_prepared_dataclass_code_of_another_python_is_not_used(tmp_path):
    import marshal

    from everest_render import prepared_code

    file = tmp_path / "dataclasses.marshal"
    prepared_code.write({"def f(): pass": marshal.dumps(compile("", "<string>", "exec"))}, file)
    assert prepared_code.load(file) is not None
    for _ in _changed_envelopes(file, {"version": "3.11.0 (another build)"}):
        assert prepared_code.load(file) is None
    assert not prepared_code.install(tmp_path / "missing.marshal")


# --- regular expressions prepared at build time --------------------------------------------------

PATTERNS = [
    ("[^\t\n\r -~\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", 0),  # PyYAML's reader: all of Unicode
    (r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})(?:T(?P<hour>[0-9]{2}))?", 0),
    (r"^ \s* (?P<key>[a-z]+) \s* = \s* (?P<value>.*?) \s*$", re.VERBOSE | re.MULTILINE),
    (r"(?i)straße|ǅ", 0),
    (r"(?s)a.b|\bword\b|(x)\1", re.ASCII),
    (rb"[\x00-\x08\x0b]+|(?P<tail>\xff)$", 0),
]


@pytest.fixture
def fresh_re_cache(monkeypatch):
    monkeypatch.setattr(re, "_cache", {})
    return re._cache  # type: ignore[attr-defined]


def test_prepared_patterns_are_what_compiling_gives(tmp_path, fresh_re_cache):
    from re import _compiler  # type: ignore[attr-defined]

    from everest_render import prepared_patterns

    file = str(tmp_path / "patterns.marshal")
    assert prepared_patterns.write(PATTERNS, file) == len(PATTERNS)
    fresh_re_cache.clear()
    assert prepared_patterns.install(file) == len(PATTERNS)
    for pattern, flags in PATTERNS:
        served = re.compile(pattern, flags)
        assert fresh_re_cache[(type(pattern), pattern, flags)] is served  # from the file, not compiled
        compiled = _compiler.compile(pattern, flags)
        assert served == compiled  # CPython compares pattern, flags and the whole program
        assert (served.groups, served.groupindex, served.flags) == (compiled.groups, compiled.groupindex, compiled.flags)
    text = "1999-12-31T23 key = value straße ǅ a\nb word xx \x00\x0b"
    for (pattern, flags), served in zip(PATTERNS, (re.compile(p, f) for p, f in PATTERNS), strict=True):
        subject: str | bytes = text.encode("latin-1", "replace") + b"\xff" if isinstance(pattern, bytes) else text
        compiled = _compiler.compile(pattern, flags)
        assert [m.groupdict() | {"": m.span()} for m in served.finditer(subject)] == [  # type: ignore[arg-type]
            m.groupdict() | {"": m.span()} for m in compiled.finditer(subject)  # type: ignore[arg-type]
        ]
    # A pattern already compiled is left as it is.
    fresh_re_cache.clear()
    kept = re.compile(PATTERNS[1][0])
    prepared_patterns.install(file)
    assert re.compile(PATTERNS[1][0]) is kept


def test_prepared_patterns_are_recorded_as_the_package_compiles_them(fresh_re_cache):
    from everest_render import prepared_patterns

    seen, stop = prepared_patterns.record()
    try:
        re.compile("recorded (?P<n>[0-9]+)", re.IGNORECASE)
        re.match(b"also bytes", b"")
        re.compile(b"left to re", re.LOCALE)
    finally:
        stop()
    assert ("recorded (?P<n>[0-9]+)", int(re.IGNORECASE)) in seen and (b"also bytes", 0) in seen
    assert not any(pattern == b"left to re" for pattern, _ in seen)
    assert re._compile.__module__ == "re"  # type: ignore[attr-defined]


def test_prepared_patterns_of_another_python_or_a_damaged_file_are_not_used(tmp_path, fresh_re_cache):
    import marshal

    from everest_render import prepared_patterns

    file = tmp_path / "patterns.marshal"
    prepared_patterns.write(PATTERNS, str(file))
    header, _ = _envelope(file)
    for _ in _changed_envelopes(file, {"version": "3.11.0 (another build)"}, {"python": b"\x00\x00\r\n"}, {"engine": (0, 0)}, {"format": 0}):
        assert prepared_patterns.load(str(file)) is None
        assert prepared_patterns.install(str(file)) == 0
    file.write_bytes(b"not marshal data")
    assert prepared_patterns.install(str(file)) == 0
    assert prepared_patterns.install(str(tmp_path / "missing")) == 0
    assert fresh_re_cache == {}
    # A program _sre cannot run (a file written by hand) is refused by _sre, not run.
    bad = (PATTERNS[1][0], 0, 32, [1, 2, 3], 3, {"year": 1, "month": 2, "hour": 3}, (None, "year", "month", "hour"))
    patterns = marshal.dumps([bad])
    _write_envelope(file, {**header, "size": len(patterns), "crc32": __import__("zlib").crc32(patterns)}, patterns)
    assert prepared_patterns.load(str(file)) == [bad] and prepared_patterns.install(str(file)) == 0


def _flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


def _envelope(file: Path | str) -> tuple[dict, bytes]:
    """A prepared file's header and payload (prepared_file.py: the header's length, the header, the payload)."""
    data = Path(file).read_bytes()
    end = 4 + int.from_bytes(data[:4], "little")
    return marshal.loads(data[4:end]), data[end:]


def _write_envelope(file: Path | str, header: dict, payload: bytes) -> None:
    written = marshal.dumps(header)
    Path(file).write_bytes(len(written).to_bytes(4, "little") + written + payload)


def _changed_envelopes(file: Path | str, *changes: dict) -> Iterator[None]:
    """The file written with each header change, then with its payload damaged (each in turn)."""
    header, payload = _envelope(file)
    for change in changes:
        _write_envelope(file, {**header, **change}, payload)
        yield
    _write_envelope(file, header, _flipped(payload))  # the checksum no longer holds
    yield
    _write_envelope(file, header, payload[:-1])  # cut short
    yield


# --- the built-ins loaded and parsed at build time -----------------------------------------------


@pytest.fixture(scope="module")
def builtin_files(tmp_path_factory):
    from everest_render.load.files import read_repository_files

    return read_repository_files(tmp_path_factory.mktemp("empty"))


def _builtin_inputs(files):
    return files.builtin, tuple(folder for folder in files.extensions if folder.builtin)


def test_prepared_builtins_are_what_parsing_the_files_gives(tmp_path, builtin_files):
    from everest_render import prepared_builtins
    from everest_render.pipeline import parse_builtins

    parsed = parse_builtins(builtin_files, prepared=False)
    assert parsed[1].providers and parsed[1].definitions and parsed[2]  # the built-ins, their extensions
    file = str(tmp_path / "builtins.marshal")
    prepared_builtins.write(_builtin_inputs(builtin_files), parsed, file)
    loaded = prepared_builtins.load(_builtin_inputs(builtin_files), file)
    assert loaded is not None and loaded is not parsed
    assert loaded == parsed  # problems, every definition and provider (documents, positions), extensions


def test_prepared_builtins_are_not_used_for_other_files_code_or_libraries(tmp_path, builtin_files, monkeypatch):
    import dataclasses

    from everest_render import package_files, prepared_builtins
    from everest_render.load.text import SourceFile
    from everest_render.pipeline import parse_builtins

    file = str(tmp_path / "builtins.marshal")
    inputs = _builtin_inputs(builtin_files)
    prepared_builtins.write(inputs, parse_builtins(builtin_files, prepared=False), file)
    assert prepared_builtins.load(inputs, file) is not None
    # A built-in file edited since (a checkout): its text differs, so the file is not used.
    first = inputs[0].sources[0]
    edited = dataclasses.replace(inputs[0], sources=[SourceFile(first.path, first.text + "# edited\n"), *inputs[0].sources[1:]])
    assert prepared_builtins.load((edited, inputs[1]), file) is None
    folder = inputs[1][0]
    assets = dataclasses.replace(folder.assets, templates={**folder.assets.templates, "new.yaml.j2": "kind: x\n"})
    assert prepared_builtins.load((inputs[0], (dataclasses.replace(folder, assets=assets), *inputs[1][1:])), file) is None
    # Another version of the package's code, or of a library parsing depends on.
    monkeypatch.setattr(package_files, "code_identity", lambda: b"another checkout")
    assert prepared_builtins.load(inputs, file) is None
    monkeypatch.undo()
    monkeypatch.setattr(prepared_builtins, "library_versions", lambda: ("pyyaml-5.4.dist-info",))
    assert prepared_builtins.load(inputs, file) is None
    monkeypatch.undo()
    # Another Python, a damaged or missing file.
    for _ in _changed_envelopes(file, {"version": "3.11.0 (another build)"}, {"format": 0}):
        assert prepared_builtins.load(inputs, file) is None
    with open(file, "wb") as out:
        out.write(b"not marshal data")
    assert prepared_builtins.load(inputs, file) is None
    assert prepared_builtins.load(inputs, str(tmp_path / "missing")) is None


def test_the_libraries_a_snapshot_depends_on_are_found_where_python_imports_them(tmp_path):
    from everest_render.prepared_builtins import LIBRARIES, library_versions

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        for module, distribution in LIBRARIES:
            (folder / module).mkdir()
            (folder / f"{distribution}-1.{len(folder.name)}.dist-info").mkdir()
    assert library_versions([str(first), str(second)]) == tuple(f"{d}-1.5.dist-info" for _, d in LIBRARIES)
    (first / "jinja2").rmdir()  # then jinja2 is imported from the second folder
    assert library_versions([str(first), str(second)])[2] == "jinja2-1.6.dist-info"
    assert library_versions([str(first)]) is None
    assert library_versions(None) is not None  # this very environment


def test_the_package_files_walk_gives_what_rglob_gives(tmp_path):
    import hashlib

    from everest_render.package_files import file_digests

    root = tmp_path / "package"
    for name in ("a.py", "b/c.yaml", "b/d/e.json", ".hidden", "b/.pyc", "b/x.pyc", "__pycache__/a.cpython-311.pyc", "b/_prepared/kept"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / "_prepared").mkdir()
    (root / "_prepared/builtins.marshal").write_text("made by the prepare step")
    (root / "link-to-file").symlink_to(root / "a.py")
    (root / "link-to-folder").symlink_to(root / "b", target_is_directory=True)
    (root / "dangling").symlink_to(root / "missing")

    def by_rglob():
        return tuple(
            (path.relative_to(root).as_posix(), hashlib.sha256(path.read_bytes()).digest())
            for path in sorted(root.rglob("*"))
            if "__pycache__" not in path.parts and path.is_file() and path.suffix not in (".pyc", ".pyo")
            and path.relative_to(root).parts[0] != "_prepared"
        )

    reference = by_rglob()
    assert file_digests(str(root)) == reference
    # The code identity is the same with the built-ins inside the package (a wheel) or not.
    from everest_render import package_files
    from everest_render.package_files import code_identity

    before = code_identity(str(root))
    (root / "_builtin/providers").mkdir(parents=True)
    (root / "_builtin/providers/provider.yaml").write_text("kind: Provider\n")
    package_files._digests.cache_clear()
    assert code_identity.__wrapped__(str(root)) == before
    assert file_digests.__wrapped__(str(root)) == by_rglob()  # the built-ins among the others, in order
    assert "_builtin/providers/provider.yaml" in dict(by_rglob())
    (root / "a.py").write_text("edited")
    package_files._digests.cache_clear()
    assert code_identity.__wrapped__(str(root)) != before
    assert "b/_prepared/kept" in dict(reference) and "b/.pyc" in dict(reference) and "link-to-file" in dict(reference)


def test_an_installed_package_takes_its_digests_from_record_unless_a_file_changed_after(tmp_path):
    import base64
    import hashlib

    from everest_render import package_files

    site = tmp_path / "site-packages"
    root = site / "package"
    for name in ("a.py", "b/c.yaml", "_builtin/providers/p.yaml", "added-later.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)

    def hashed():
        package_files._digests.cache_clear()
        package_files._installed_record.cache_clear()
        return package_files.file_digests.__wrapped__(str(root))

    read = hashed()  # no RECORD: every file read and hashed
    (site / "package-1.0.dist-info").mkdir()
    record = site / "package-1.0.dist-info/RECORD"
    # A wrong digest for a.py shows when RECORD is what was used.
    claimed = {"a.py": hashlib.sha256(b"as installed").digest()}
    lines = [
        f"package/{name},sha256={base64.urlsafe_b64encode(claimed.get(name, digest)).rstrip(b'=').decode()},{(root / name).stat().st_size}"
        for name, digest in read if name != "added-later.py"
    ]
    record.write_text("\n".join([*lines, "package-1.0.dist-info/RECORD,,", '"package/x,y.py",sha256=AAAA,1']) + "\n")
    os.utime(record, ns=(10**19, 10**19))  # written after every file
    assert hashed() == tuple((name, claimed.get(name, digest)) for name, digest in read)
    # Modified after the install, or of another size: read and hashed again.
    os.utime(root / "a.py", ns=(10**19 + 1, 10**19 + 1))
    assert hashed() == read
    os.utime(root / "a.py", ns=(1, 1))
    (root / "b/c.yaml").write_text("b/c.yaml, edited")
    os.utime(root / "b/c.yaml", ns=(1, 1))
    assert dict(hashed())["b/c.yaml"] == hashlib.sha256(b"b/c.yaml, edited").digest()
    # Two dist-info folders of the package: which one is ours is unknown, so none is trusted.
    (site / "package-0.9.dist-info").mkdir()
    (root / "b/c.yaml").write_text("b/c.yaml")
    assert hashed() == read
    package_files._digests.cache_clear()
    package_files._installed_record.cache_clear()


def test_a_render_with_the_prepared_builtins_is_byte_identical(tmp_path, builtin_files, monkeypatch):
    from everest_render import prepared_builtins
    from everest_render.pipeline import parse_builtins, read_repository, render_repository

    (tmp_path / "repo/clusters").mkdir(parents=True)
    (tmp_path / "repo/clusters/orders.yaml").write_text(mongodb())
    (tmp_path / "repo/clusters/broken.yaml").write_text(mongodb("broken", body="  instances:\n    engine: {replicas: three}\n"))
    file = str(tmp_path / "builtins.marshal")
    prepared_builtins.write(_builtin_inputs(builtin_files), parse_builtins(builtin_files, prepared=False), file)
    original = prepared_builtins.load
    used = []
    monkeypatch.setattr(prepared_builtins, "load", lambda inputs: used.append(1) or original(inputs, file))
    with_snapshot = render_repository(read_repository(tmp_path / "repo"))
    monkeypatch.setattr(prepared_builtins, "load", lambda inputs: None)
    without = render_repository(read_repository(tmp_path / "repo"))
    assert used == [1] and with_snapshot.failed
    assert [str(d) for d in with_snapshot.diagnostics] == [str(d) for d in without.diagnostics]
    (tmp_path / "repo/clusters/broken.yaml").unlink()
    monkeypatch.setattr(prepared_builtins, "load", lambda inputs: original(inputs, file))
    with_snapshot = render_repository(read_repository(tmp_path / "repo"))
    monkeypatch.setattr(prepared_builtins, "load", lambda inputs: None)
    without = render_repository(read_repository(tmp_path / "repo"))
    assert with_snapshot.plan.stream() == without.plan.stream() and with_snapshot.plan.stream()


def _fresh_package_digests():
    from everest_render import package_files

    for cached in (package_files._digests, package_files._installed_record, package_files.builtin_tree_digest, package_files._stat_records):
        cached.cache_clear()


def _write_record(site, root, claimed=None):
    """The RECORD an installer writes for every file under ``root``, written after them."""
    import base64
    import hashlib

    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        digest = (claimed or {}).get(name, hashlib.sha256(path.read_bytes()).digest())
        lines.append(f"{root.name}/{name},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{path.stat().st_size}")
    (site / f"{root.name}-1.0.dist-info").mkdir(exist_ok=True)
    record = site / f"{root.name}-1.0.dist-info/RECORD"
    record.write_text("\n".join(lines) + "\n")
    os.utime(record, ns=(10**19, 10**19))


BUILTIN_TREE = {
    "providers/p/provider.yaml": "kind: Provider\n",
    "providers/p/cluster.yaml.j2": "kind: X\n",
    "providers/p/cases/one/cluster.yaml": "kind: DatabaseCluster\n",
    "providers/p/crds/x.yaml": "a vendored CRD\n",
    "extensions/e/extension.yaml": "kind: Extension\n",
    "extensions/e/crds/y.yaml": "a vendored CRD\n",
}


def _checkout_and_install(tmp_path):
    """A checkout (package beside providers/ and extensions/) and a site-packages where the
    wheel built from it is installed (built-ins in the package's _builtin/, without crds/)."""
    checkout, site = tmp_path / "checkout", tmp_path / "site-packages"
    for name, text in {**BUILTIN_TREE, "package/a.py": ""}.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
        if "/crds/" not in name:
            installed = site / (name if name.startswith("package/") else f"package/_builtin/{name}")
            installed.parent.mkdir(parents=True, exist_ok=True)
            installed.write_text(text)
    _write_record(site, site / "package")
    return checkout / "package", site / "package"


def test_the_builtin_tree_digest_of_a_checkout_is_that_of_its_wheel_taken_from_record(tmp_path):
    import hashlib

    from everest_render.package_files import builtin_tree_digest

    checkout, installed = _checkout_and_install(tmp_path)
    _fresh_package_digests()
    made = builtin_tree_digest(str(checkout))  # what `prepare` stores, in the checkout
    assert builtin_tree_digest(str(installed)) == made
    # RECORD is what the wheel's digest came from: a claimed digest shows through, unread.
    _write_record(installed.parent, installed, claimed={"_builtin/providers/p/cluster.yaml.j2": hashlib.sha256(b"claimed").digest()})
    _fresh_package_digests()
    assert builtin_tree_digest(str(installed)) != made
    _write_record(installed.parent, installed)
    # A vendored CRD is not part of the tree (the wheel leaves them out); any shipped file is.
    (checkout.parent / "providers/p/crds/x.yaml").write_text("another CRD version\n")
    (checkout.parent / "providers/p/cases/one/cluster.yaml").write_text("kind: DatabaseCluster # edited\n")
    _fresh_package_digests()
    assert builtin_tree_digest(str(installed)) == made != builtin_tree_digest(str(checkout))
    _fresh_package_digests()


def test_an_edited_added_or_removed_builtin_of_an_install_is_read_not_taken_as_prepared(tmp_path):
    from everest_render import package_files, prepared_builtins

    checkout, installed = _checkout_and_install(tmp_path)
    _fresh_package_digests()
    file = str(tmp_path / "builtins.marshal")
    stored = ("the built-ins as prepare read them",)
    prepared_builtins.write(stored, "what parsing them gave", file, tree=package_files.builtin_tree_digest(str(checkout)))

    def taken():
        _fresh_package_digests()
        return prepared_builtins.unchanged_inputs(file, str(installed))

    assert taken() == stored
    template = installed / "_builtin/providers/p/cluster.yaml.j2"
    template.write_text("kind: Y\n")  # edited in site-packages after the install (RECORD's time)
    os.utime(template, ns=(10**19 + 1, 10**19 + 1))
    assert taken() is None
    template.write_text("kind: X\n")  # the very bytes installed again
    assert taken() == stored
    (installed / "_builtin/providers/p/extra.j2").write_text("{% macro m() %}{% endmacro %}\n")
    assert taken() is None
    (installed / "_builtin/providers/p/extra.j2").unlink()
    (installed / "_builtin/extensions/e/extension.yaml").unlink()
    assert taken() is None
    # Written without a tree digest (reading the built-ins found a problem): never taken.
    prepared_builtins.write(stored, "what parsing them gave", file)
    assert prepared_builtins.unchanged_inputs(file, str(checkout)) is None
    _fresh_package_digests()


def test_a_checkout_stat_record_vouches_only_for_files_unchanged_since_it_was_made(tmp_path, monkeypatch):
    import hashlib

    from everest_render import package_files, prepared_file

    checkout, _ = _checkout_and_install(tmp_path)
    record = str(tmp_path / "file-stats.marshal")
    monkeypatch.setattr(package_files, "STAT_RECORD", record)
    _fresh_package_digests()
    hashed = package_files.builtin_tree_digest(str(checkout)), package_files.code_identity.__wrapped__(str(checkout))
    assert package_files.write_stat_record(lambda found: False, str(checkout), record) == 0  # nothing settled: nothing trusted
    assert package_files.write_stat_record(lambda found: True, str(checkout), record) == len([n for n in BUILTIN_TREE if "/crds/" not in n]) + 1  # no vendored CRD
    _fresh_package_digests()
    assert (package_files.builtin_tree_digest(str(checkout)), package_files.code_identity.__wrapped__(str(checkout))) == hashed
    # The record is what the digests came from: a claimed digest shows through, unread.
    records = marshal.loads(prepared_file.read(record, lambda: {"format": 1}))
    template = str(checkout.parent / "providers/p/cluster.yaml.j2")
    records[template] = (records[template][0], hashlib.sha256(b"claimed").digest())
    prepared_file.write(record, marshal.dumps(records), {"format": 1})
    _fresh_package_digests()
    assert package_files.builtin_tree_digest(str(checkout)) != hashed[0]
    # An edit changes the file's stat (ctime, and here its size): the file is read again.
    Path(template).write_text("kind: X\n# edited\n")
    _fresh_package_digests()
    edited = package_files.builtin_tree_digest(str(checkout))
    monkeypatch.setattr(package_files, "STAT_RECORD", str(tmp_path / "no-record.marshal"))
    _fresh_package_digests()
    assert edited == package_files.builtin_tree_digest(str(checkout)) != hashed[0]
    _fresh_package_digests()


def test_the_read_stage_takes_the_prepared_builtins_only_when_unchanged_and_without_a_reader(tmp_path, monkeypatch):
    from everest_render import package_files, prepared_builtins
    from everest_render.load.files import read_repository_files, read_text
    from everest_render.pipeline import parse_builtins

    (tmp_path / "repo/clusters").mkdir(parents=True)
    (tmp_path / "repo/clusters/orders.yaml").write_text(mongodb())
    read = read_repository_files(tmp_path / "repo", reader=read_text)  # a reader: always read
    inputs = _builtin_inputs(read)
    file = str(tmp_path / "builtins.marshal")
    prepared_builtins.write(inputs, parse_builtins(read, prepared=False), file, tree=package_files.builtin_tree_digest())
    stored = prepared_builtins.unchanged_inputs(file)
    assert stored == inputs and stored is not inputs  # this checkout's built-ins, unchanged
    monkeypatch.setattr(prepared_builtins, "unchanged_inputs", lambda: stored)
    taken = read_repository_files(tmp_path / "repo")
    assert taken == read and taken.builtin is stored[0]
    # What the parse stage then takes is what the prepare step stored for those very inputs
    # (the very objects: not compared text by text again); equal inputs read anew are compared.
    outputs = prepared_builtins.load(_builtin_inputs(taken), file)
    assert outputs == parse_builtins(read, prepared=False) and outputs is prepared_builtins._unpickled(file)[2]
    assert prepared_builtins.load(inputs, file) == outputs
    assert read_repository_files(tmp_path / "repo", reader=read_text).builtin is not stored[0]
    monkeypatch.setattr(prepared_builtins, "unchanged_inputs", lambda: None)
    assert read_repository_files(tmp_path / "repo") == read


def test_prepared_input_schemas_are_what_building_them_gives(tmp_path, monkeypatch):
    from everest_render import package_files, prepared_builtins
    from everest_render.parse.inputs import input_kinds, input_schema

    kinds = input_kinds()
    assert "DatabaseCluster" in kinds and "common" not in kinds and "Instance.overlay" not in kinds
    file = str(tmp_path / "input-schemas.marshal")
    prepared_builtins.write_input_schemas({kind: input_schema(kind) for kind in kinds}, file)
    for kind in kinds:
        assert prepared_builtins.input_schema(kind, file) == input_schema(kind)
    prepared_builtins.input_schema("DatabaseCluster", file)["properties"].clear()  # each call gives its own copy
    assert prepared_builtins.input_schema("DatabaseCluster", file) == input_schema("DatabaseCluster")
    assert prepared_builtins.input_schema("NoSuchKind", file) is None
    # Made by other code (an edited schema file is part of the package's code and data): unused.
    monkeypatch.setattr(package_files, "code_identity", lambda: b"another checkout")
    other = str(tmp_path / "other.marshal")
    prepared_builtins.write_input_schemas({"DatabaseCluster": {"type": "object"}}, other)
    monkeypatch.undo()
    assert prepared_builtins.input_schema("DatabaseCluster", other) is None
    assert prepared_builtins.input_schema("DatabaseCluster", str(tmp_path / "missing")) is None


def test_prepared_object_schemas_are_what_parsing_the_json_gives(tmp_path, builtin_providers):
    from everest_render import prepared_builtins

    provider = builtin_providers["percona-server-mongodb"]
    texts = {f"{provider.folder}/{name}": text for name, text in provider.assets.schemas.items()}
    file = str(tmp_path / "object-schema")
    (tmp_path / "object-schema-gone.marshal").write_bytes(b"a schema no longer there")
    prepared_builtins.write_object_schemas(texts, file)
    assert len(list(tmp_path.glob("object-schema-*.marshal"))) == len(texts)
    for name, text in texts.items():
        assert prepared_builtins.object_schema(name, text, file) == json.loads(text)
        assert _undeferred(prepared_builtins.object_schema(name, text, file, narrowed=True)) == json.loads(text)
    name, text = next(iter(texts.items()))
    assert prepared_builtins.object_schema(name, text.replace("object", "array", 1), file) is None  # an edited file
    assert prepared_builtins.object_schema("another/folder.json", text, file) is None
    assert prepared_builtins.object_schema(name, text, str(tmp_path / "missing")) is None


def test_the_builtins_read_in_a_checkout_are_what_an_install_reads(tmp_path):
    # The wheel leaves out the folders' vendored CRDs (pyproject.toml); a checkout that read
    # them as assets would differ from every install, whose prepared built-ins then never match.
    from everest_render.load.files import BUILTIN_PREFIX, builtin_root, read_extension_folders, read_provider_assets

    checkout = builtin_root()
    install = tmp_path / "site-packages"
    for top in ("providers", "extensions"):
        shutil.copytree(checkout / top, install / top, ignore=lambda folder, names: ["crds"] if "crds" in names else [])
    assert (checkout / "extensions/network-policy/crds").is_dir()  # what this test is about
    for folder in sorted((checkout / "providers").iterdir()):
        if folder.is_dir():
            assets = read_provider_assets(folder, checkout, BUILTIN_PREFIX)
            assert assets == read_provider_assets(install / "providers" / folder.name, install, BUILTIN_PREFIX), folder.name
    problems: list = []
    assert read_extension_folders(checkout, BUILTIN_PREFIX, builtin=True, problems=problems) == read_extension_folders(
        install, BUILTIN_PREFIX, builtin=True, problems=problems
    )
    assert problems == []


# --- jsonschema-rs imported without email.utils --------------------------------------------------


def test_jsonschema_rs_is_imported_without_email_utils_and_keeps_its_build_time():
    show = "import jsonschema_rs.jsonschema_rs as ext; print(repr(ext.__build__['info-time']))"
    script = (
        f"import sys, everest_render.schema_check; print('email.utils' in sys.modules); {show}; "
        "import email.utils; print(email.utils.parsedate_to_datetime.__module__, hasattr(email.utils, 'formataddr'))"
    )
    ours = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    plain = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, check=True).stdout.splitlines()
    assert ours == ["False", plain[0], "email.utils True"]  # and afterwards email.utils is the real module


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 12 Nov 2026 07:50:16 +0000",
        "Mon, 1 Jan 2024 00:00:00 +0000",
        "Sun, 29 Feb 2032 23:59:59 +0000",
        "Tue, 31 Feb 2026 00:00:00 +0000",  # no such day: both refuse it alike
        "Thu, 12 Nov 2026 07:50:16 -0000",  # what email.utils reads as a naive time
        "Thu, 12 Nov 2026 07:50:16 +0100",
        "12 Nov 2026 07:50:16 GMT",
        "Thu, 12 Nov 26 07:50:16 +0000",
        "Thu, \uff112 Nov 2026 07:50:16 +0000",  # a non-ASCII digit
        "",
    ],
)
def test_the_email_utils_stand_in_reads_dates_as_email_utils_does(text):
    import email.utils

    from everest_render.jsonschema_library import _stand_in

    def outcome(parse):
        try:
            value = parse(text)
        except Exception as error:
            return type(error)
        return (value, value.tzinfo) if value is not None else None

    assert outcome(_stand_in.parsedate_to_datetime) == outcome(email.utils.parsedate_to_datetime)
    assert _stand_in.formataddr is email.utils.formataddr  # any other name: the real module's


def test_provider_assets_resolve_only_links_and_read_what_resolving_every_asset_read(tmp_path):
    from everest_render.load import files

    def resolving_every_asset(folder, root, prefix, problems):  # the reading before links alone were resolved
        inside, read, unreadable = folder.resolve(), {}, set()
        for path in sorted(folder.rglob("*")):
            if path.suffix not in files.ASSET_SUFFIXES or path.name.startswith(".") or "cases" in path.relative_to(folder).parts[:-1]:
                continue
            name = prefix + path.relative_to(root).as_posix()
            if not path.resolve().is_relative_to(inside):
                problems.append(files.Diagnostic(name, 1, 1, "a symbolic link that leads outside the provider folder is not read"))
                unreadable.add(path.relative_to(folder).as_posix())
            elif not path.is_dir():
                read[path.relative_to(folder).as_posix()] = path.read_text()
        return read, unreadable

    root = tmp_path / "repo"
    folder = root / "providers/p"
    for name in ("a.yaml.j2", "schemas/A.json", "deep/er/b.j2", ".hidden.j2", "cases/c.json", "dir.j2/inner.j2"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"{name}\n")
    (tmp_path / "outside.j2").write_text("secret\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/x.j2").write_text("elsewhere\n")
    (folder / "out.j2").symlink_to(tmp_path / "outside.j2")
    (folder / "in.j2").symlink_to(folder / "a.yaml.j2")
    (folder / "linked").symlink_to(folder / "deep", target_is_directory=True)
    (folder / "away").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "linked-dir.j2").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    problems, expected_problems = [], []
    assets = files.read_provider_assets(folder, root, "", problems)
    read, unreadable = resolving_every_asset(folder, root, "", expected_problems)
    assert {**assets.templates, **assets.schemas} == read and assets.unreadable == unreadable
    assert problems == expected_problems and {p.file for p in problems} == {"providers/p/out.j2", "providers/p/linked-dir.j2"}
