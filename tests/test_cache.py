"""The render cache: content-addressed, verified, safe to lose, and invisible in what is written or reported.

The property test edits a small repository at random (clusters, the provider's template, the
definition, the settings file, duplicates, line shifts, errors in every stage) and compares a
cached and an uncached render after every edit. EVEREST_FUZZ_EXAMPLES (make fuzz) runs it longer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from everest_render import parallel
from everest_render.cache import layout as layout_module
from everest_render.cache import snapshot
from everest_render.cache.entries import GROUP_SPREAD, KeyMaker, decode_entry, decode_group, encode_entry, encode_group, neighbours
from everest_render.cache.store import LAYOUT, Store, default_location, renderer_identity
from everest_render.commands.cli import main as cli_main
from everest_render.emit import output
from everest_render.model import ResolvedCluster
from everest_render.pipeline import read_repository, render_incremental, render_repository
from everest_render.results import RenderResult
from everest_render.testing import Repo
from tests.test_templates import CONFIGMAP_SCHEMA, GOOD_TEMPLATE, write_toy_provider

LONG = "EVEREST_FUZZ_EXAMPLES" in os.environ
SETTINGS_HEADER = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\n"


def toy_cluster(name: str, replicas: object = 1, namespace: str = "ns") -> str:
    return (
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec: {{provider: toy, instances: {{engine: {{replicas: {replicas}, config: 'x = 1'}}}}}}\n"
    )


def seen(result: RenderResult) -> tuple[object, ...]:
    """Everything a command can print or write of a render."""
    objects = [(json.dumps(o.obj, sort_keys=False), str(o.cluster), o.template) for o in result.objects]
    emitted = [(e.identity, str(e.cluster), e.template, e.shared) for e in result.emitted]
    return result.plan.files, [str(d) for d in result.diagnostics], objects, emitted, result.failed


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def entries(root: Path) -> list[Path]:
    return sorted(p for p in (root / LAYOUT).rglob("*") if p.is_file())


# --- the store ---------------------------------------------------------------------------


def test_an_entry_comes_back_and_a_corrupt_one_is_a_miss(tmp_path):
    store = Store.open(tmp_path / "cache")
    key = "ab" * 32
    store.save(key, b"payload")
    assert store.load(key) == b"payload"
    (entry,) = entries(tmp_path / "cache")
    entry.write_bytes(entry.read_bytes()[:-1] + b"X")  # one byte flipped on disk
    assert store.load(key) is None
    entry.write_bytes(b"")  # a torn file
    assert store.load(key) is None
    assert store.load("cd" * 32) is None and store.warning is None


def test_a_cache_folder_deleted_during_a_run_is_made_again(tmp_path):
    import shutil

    store = Store.open(tmp_path / "cache")
    shutil.rmtree(tmp_path / "cache")
    store.save("ab" * 32, b"payload")
    assert store.load("ab" * 32) == b"payload" and store.enabled and store.warning is None


def test_an_entry_is_written_through_a_new_private_temporary_file_drawn_again_when_its_name_is_taken(tmp_path, monkeypatch):
    from everest_render.cache import store as store_module

    store = Store.open(tmp_path / "cache")
    folder = tmp_path / "cache" / LAYOUT
    (folder / f".tmp-{'00' * 8}").write_bytes(b"another run's")  # the first name drawn is taken
    draws = iter([bytes(8), bytes(8), b"\x01" * 8])
    monkeypatch.setattr(store_module.os, "urandom", lambda size: next(draws))
    made: list[str] = []
    replace = os.replace
    monkeypatch.setattr(store_module.os, "replace", lambda source, target: made.append(oct(os.stat(source).st_mode & 0o777)) or replace(source, target))
    store.save("ab" * 32, b"payload")
    assert made == ["0o600"] and store.load("ab" * 32) == b"payload"  # as tempfile.mkstemp makes it
    assert (folder / f".tmp-{'00' * 8}").read_bytes() == b"another run's" and not (folder / f".tmp-{'01' * 8}").exists()
    assert next(draws, None) is None  # drawn again until a name was free


def test_an_unwritable_location_turns_the_cache_off_with_a_warning(tmp_path):
    (tmp_path / "file").write_text("")
    store = Store.open(tmp_path / "file" / "cache")  # under a file: cannot be created (even as root)
    assert not store.enabled and "cannot use the cache folder" in (store.warning or "")
    store.save("ab" * 32, b"x")
    assert store.load("ab" * 32) is None


def test_the_location_is_the_variable_else_the_xdg_cache_folder(tmp_path):
    assert default_location({"EVEREST_RENDER_CACHE": str(tmp_path)}) == tmp_path
    assert default_location({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/everest-render")
    assert default_location({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "everest-render"


def test_another_renderer_never_finds_an_entry(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db.yaml", toy_cluster("db"))
    (cluster,) = repo.resolved()
    assert KeyMaker(b"one").cluster_key(cluster) != KeyMaker(b"two").cluster_key(cluster)
    assert KeyMaker(b"one").cluster_key(cluster) == KeyMaker(b"one").cluster_key(cluster)


def test_an_entry_that_is_not_a_render_is_a_miss(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db.yaml", toy_cluster("db"))
    result = repo.result()
    payload = encode_entry(result.objects, result.plan.files, result.diagnostics)
    assert payload is not None
    (ref,) = {o.cluster for o in result.objects}
    assert decode_entry(payload, ref) == (result.objects, dict(result.plan.files), result.diagnostics)
    assert decode_entry(b"not marshal", ref) is None
    assert decode_entry(__import__("marshal").dumps((1, [], {"a": "text, not bytes"}, [])), ref) is None



def test_neighbours_are_a_few_files_in_order_and_an_added_file_changes_only_its_group():
    flat = [f"clusters/a/{number:03d}.yaml" for number in range(400)]
    paths = [*flat, "clusters/b/x.yaml", "clusters/b/x.yaml", "clusters/c.yaml"]
    groups = [[paths[index] for index in group] for group in neighbours(paths)]
    assert [path for group in groups for path in group] == paths  # in order, each once
    assert any({400, 401} <= set(group) for group in neighbours(paths))  # a file's members together
    assert 400 / GROUP_SPREAD / 2 < len([g for g in groups if g[0] in flat]) < 400 / GROUP_SPREAD * 2
    added = [*sorted([*flat, "clusters/a/050b.yaml"]), *paths[400:]]
    changed = [group for group in ([added[index] for index in g] for g in neighbours(added)) if group not in groups]
    # The added file's group, and its second half when the file is where a group ends.
    assert 1 <= len(changed) <= 2 and "clusters/a/050b.yaml" in changed[0]
    assert neighbours([]) == []


def test_a_group_entry_that_is_not_one_is_a_miss():
    assert decode_group(encode_group([b"a", None]), 2) == [b"a", None]
    assert decode_group(encode_group([b"a", None]), 3) is None  # another group's
    assert decode_group(b"not marshal", 1) is None
    assert decode_group(__import__("marshal").dumps((-1, [b"a"])), 1) is None  # another format
    assert decode_group(__import__("marshal").dumps((decode_group.__globals__["ENTRY_FORMAT"], ["text"])), 1) is None


def test_clusters_are_stored_by_groups_and_a_change_renders_only_its_own_again(repo, tmp_path, monkeypatch):
    import everest_render.pipeline as pipeline

    rendered: list[str] = []
    render_slice = pipeline.render_slice

    def counting(clusters, *args, **kwargs):  # type: ignore[no-untyped-def]
        rendered.extend(c.ref.name for c in clusters)
        return render_slice(clusters, *args, **kwargs)

    monkeypatch.setattr(pipeline, "render_slice", counting)
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/z.yaml", toy_cluster("z"))
    store = Store.open(tmp_path / "cache")
    render_repository(read_repository(repo.root), cache=store)
    before = set(entries(tmp_path / "cache"))  # the world's, and z's
    (repo.root / "clusters/z.yaml").unlink()
    names = [f"db{index}" for index in range(6)]
    paths = [f"clusters/{'a' if name < 'db4' else 'b'}/{name}.yaml" for name in names]
    for name, path in zip(names, paths, strict=True):
        repo.write(path, toy_cluster(name))
    first = render_repository(read_repository(repo.root), cache=store)
    groups = [[names[index] for index in group] for group in neighbours(paths)]
    # One entry a group of clusters and one a group of their loaded files, not one a file each.
    assert len(set(entries(tmp_path / "cache")) - before) == 2 * len(groups) < 2 * len(names)
    rendered.clear()
    assert seen(render_repository(read_repository(repo.root), cache=store)) == seen(first) and rendered == []
    repo.write("clusters/a/db1.yaml", toy_cluster("db1", 2))
    uncached = seen(render_repository(read_repository(repo.root)))
    rendered.clear()
    assert seen(render_repository(read_repository(repo.root), cache=store)) == uncached
    assert rendered == next(group for group in groups if "db1" in group)  # its group's, no other

# --- through the command line ------------------------------------------------------------


def test_render_and_check_give_the_same_bytes_with_and_without_the_cache(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    # Every run judged as at the start: the files written here stay too new to be recorded, as
    # they are when the runs follow at once (on a loaded machine the second could come after
    # the racy window and record them: a write this test is not about).
    started = snapshot.now()
    monkeypatch.setattr(snapshot, "now", lambda: started)
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index in range(3):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}"))
    runner = CliRunner()
    fresh = runner.invoke(cli_main, ["render", "--repo", str(repo.root), "--out", str(tmp_path / "fresh"), "--no-cache"])
    assert fresh.exit_code == 0 and entries(tmp_path / "cache") == []  # --no-cache writes nothing
    filled = []
    for _ in range(2):  # the first run fills the cache, the second finds everything there
        cached = runner.invoke(cli_main, ["render", "--repo", str(repo.root), "--out", str(tmp_path / "cached")])
        assert cached.exit_code == 0, cached.output
        filled.append({p: p.stat().st_mtime_ns for p in entries(tmp_path / "cache")})
    assert len(filled[0]) > 3 and filled[1] == filled[0]  # nothing written again
    assert tree(tmp_path / "fresh") == tree(tmp_path / "cached")
    check = runner.invoke(cli_main, ["render", "--check", "--repo", str(repo.root), "--out", str(tmp_path / "fresh")])
    assert check.exit_code == 0, check.output


def test_errors_of_unchanged_clusters_are_still_reported(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    write_toy_provider(repo, GOOD_TEMPLATE.replace("| string | tojson", ""))  # an integer where the schema wants a string
    repo.write("clusters/db.yaml", toy_cluster("db"))
    runs, filled = [], []
    for _ in range(2):
        runs.append(CliRunner().invoke(cli_main, ["validate", "--repo", str(repo.root)]))
        filled.append(entries(tmp_path / "cache"))
    assert [r.exit_code for r in runs] == [3, 3]
    assert "does not match the operator's schema" in runs[1].output and runs[0].output == runs[1].output
    assert filled[0] and filled[1] == filled[0]  # the second run took the cluster from the cache


def test_an_unwritable_cache_is_one_warning_and_the_same_render(repo, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "file" / "cache"))
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db.yaml", toy_cluster("db"))
    done = CliRunner().invoke(cli_main, ["render", "--stdout", "--repo", str(repo.root)])
    assert done.exit_code == 0
    assert done.stderr.count("warning: cannot use the cache folder") == 1
    assert done.stdout.encode() == repo.result().plan.stream()


def test_concurrent_runs_share_one_cache(repo, tmp_path):
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index in range(4):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}"))
    env = {**os.environ, "EVEREST_RENDER_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "everest_render", "render", "--stdout", "--repo", str(repo.root)]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert {out for out, _ in outputs} == {repo.result().plan.stream()} and all(err == b"" for _, err in outputs)
    assert not [p for p in (tmp_path / "cache").rglob(".tmp-*")]  # no temporary file left behind


# --- the property: any edit sequence, cached == uncached ----------------------------------

TEMPLATES = [
    GOOD_TEMPLATE,
    GOOD_TEMPLATE + "  team: {{ 'a' | tojson }}\n",
    GOOD_TEMPLATE.replace("| string | tojson", ""),  # refused by the CRD schema check
    GOOD_TEMPLATE.replace("components.engine.image", "components.engine.imag"),  # a template error
]
SETTINGS = [
    None,
    SETTINGS_HEADER + "spec:\n  gitops:\n    annotations: {argocd.argoproj.io/sync-wave: '2'}\n",
    SETTINGS_HEADER + "spec:\n  gitops:\n    deletionProtection: confirm\n",
    SETTINGS_HEADER + "spec:\n  colour: blue\n",  # refused
    SETTINGS_HEADER + "spec:\n  extensions:\n    extras: {}\n",  # an extension in effect (write_extras)
    SETTINGS_HEADER + "spec:\n  extensions:\n    extras: {settings: {clusterWide: true}}\n",  # a cluster-scoped kind: refused
]


def write_extras(repo: Repo) -> None:
    """An extension rendering a PodDisruptionBudget for each cluster and a ServiceAccount shared
    by a namespace's clusters, or with ``settings.clusterWide`` a ClusterRole (refused: a
    template renders only objects of its cluster's namespace)."""
    repo.write("extensions/extras/extension.yaml", """
        apiVersion: everest-render/v1alpha1
        kind: Extension
        metadata: {name: extras}
        spec:
          settingsSchema:
            type: object
            properties: {clusterWide: {type: boolean}}
            additionalProperties: false
          templates:
            - {file: pdb.yaml.j2, shared: false}
            - {file: account.yaml.j2, shared: true}
          objects:
            - {apiVersion: policy/v1, kind: PodDisruptionBudget, schema: schemas/open.json}
            - {apiVersion: v1, kind: ServiceAccount, schema: schemas/open.json}
            - {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, schema: schemas/open.json}
        """)
    repo.write("extensions/extras/schemas/open.json", json.dumps({"type": "object", "required": ["apiVersion", "kind", "metadata"]}))
    repo.write("extensions/extras/pdb.yaml.j2", "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ cluster.name }}-pdb\n"
               "spec: {maxUnavailable: 1}\n")
    repo.write("extensions/extras/account.yaml.j2", "{% if 'clusterWide' in settings %}apiVersion: rbac.authorization.k8s.io/v1\n"
               "kind: ClusterRole\nrules: []\n{% else %}apiVersion: v1\nkind: ServiceAccount\n{% endif %}metadata:\n  name: db-reader\n")
NAMES = ["db0", "db1", "db2", "db3"]
# Two namespaces: a change in one leaves the other's output to the cache.
SPACES = {"db0": "ns", "db1": "ns", "db2": "other", "db3": "other"}
EDITS = st.one_of(
    st.tuples(st.just("cluster"), st.sampled_from(NAMES), st.sampled_from([1, 2, 3, 0, "'two'"])),
    st.tuples(st.just("remove"), st.sampled_from(NAMES), st.none()),
    st.tuples(st.just("shift"), st.sampled_from(NAMES), st.integers(1, 3)),  # comment lines: every position moves
    st.tuples(st.just("duplicate"), st.sampled_from(NAMES), st.none()),
    st.tuples(st.just("move"), st.sampled_from(NAMES), st.sampled_from(["ns", "other", "third"])),  # to another namespace
    st.tuples(st.just("span"), st.none(), st.booleans()),  # one file with documents in two namespaces (or gone)
    st.tuples(st.just("template"), st.none(), st.sampled_from(range(len(TEMPLATES)))),
    st.tuples(st.just("settings"), st.none(), st.sampled_from(range(len(SETTINGS)))),
    st.tuples(st.just("image"), st.none(), st.sampled_from(["db:1.0", "db:1.1"])),
    st.tuples(st.just("schema"), st.none(), st.booleans()),
)


def apply(repo: Repo, edit: tuple[str, str | None, object]) -> None:
    what, name, value = edit
    path = repo.root / "clusters" / f"{name}.yaml"
    if what == "cluster":
        repo.write(f"clusters/{name}.yaml", toy_cluster(str(name), value, SPACES[str(name)]))
    elif what == "remove" and path.exists():
        path.unlink()
    elif what == "shift" and path.exists():
        path.write_text("# moved\n" * int(str(value)) + path.read_text())
    elif what == "move":
        repo.write(f"clusters/{name}.yaml", toy_cluster(str(name), namespace=str(value)))
    elif what == "span":
        spanning = repo.root / "clusters" / "span.yaml"
        text = toy_cluster("span-a", namespace="ns") + "---\n" + toy_cluster("span-b", namespace="third")
        spanning.write_text(text) if value else spanning.unlink(missing_ok=True)
    elif what == "duplicate":
        repo.write(f"clusters/copy-of-{name}.yaml", toy_cluster(str(name), namespace=SPACES[str(name)]))
    elif what == "template":
        repo.write("providers/toy/configmap.yaml.j2", TEMPLATES[int(str(value))])
    elif what == "settings":
        text = SETTINGS[int(str(value))]
        target = repo.root / "everest-render.yaml"
        target.unlink(missing_ok=True) if text is None else target.write_text(text)
    elif what == "image":
        definition = repo.root / "definitions" / "toy.yaml"
        definition.write_text(definition.read_text().replace("db:1.0", str(value)).replace("db:1.1", str(value)))
    elif what == "schema":
        schema = {**CONFIGMAP_SCHEMA, "properties": {**CONFIGMAP_SCHEMA["properties"], "data": {"type": "object"}}}
        (repo.root / "providers/toy/configmap.json").write_text(json.dumps(schema if value else CONFIGMAP_SCHEMA))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    # One cache for every example, as a long-lived one on a developer's machine.
    return Store.open(tmp_path_factory.mktemp("cache"))


def written(result: RenderResult) -> tuple[object, ...]:
    """What `render` writes and prints of a render (a replayed one holds no objects)."""
    return result.plan.files, [str(d) for d in result.diagnostics], result.failed, result.cluster_count


@pytest.fixture
def later(monkeypatch):
    """Runs judged as if long after every file was written: records made now are trusted by
    stat (not racy), as on a developer's machine where the last edit was minutes ago."""
    monkeypatch.setattr(snapshot, "now", lambda: __import__("time").time_ns() + 10 * snapshot.RACY_NS)


# Every key the property test made, with the digest of the whole resolved cluster it keyed. A key
# serialises only what a cluster is resolved from (cache/entries.py): equal keys must have keyed
# equal resolved clusters, which one that left out a dependency would not.
WHOLE: dict[str, bytes] = {}


@pytest.fixture
def keys_checked(monkeypatch):
    key = KeyMaker.cluster_key

    def checked(self: KeyMaker, cluster: ResolvedCluster) -> str | None:
        found = key(self, cluster)
        if found is not None:
            whole = hashlib.sha256(self.pickled(cluster)).digest()
            assert WHOLE.setdefault(found, whole) == whole, f"one key for two resolved forms of {cluster.ref}"
        return found

    monkeypatch.setattr(KeyMaker, "cluster_key", checked)


@settings(
    max_examples=int(os.environ.get("EVEREST_FUZZ_EXAMPLES", "4")),
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.lists(EDITS, min_size=1, max_size=2), min_size=1, max_size=4))
# Every edit of the world once, whatever the random examples draw: each must miss the entries it changes.
@example([[("template", None, 1)], [("schema", None, True)], [("image", None, "db:1.1")], [("settings", None, 1), ("cluster", "db1", 2)]])
# An extension in effect, a change in one namespace; then a kind it may not render, refused.
@example([[("settings", None, 4)], [("cluster", "db2", 2)], [("settings", None, 5)], [("cluster", "db0", 3)], [("remove", "db2", None)]])
def test_cached_and_uncached_renders_are_identical_after_any_edits(tmp_path_factory, shared_cache, later, keys_checked, edits):
    repo = Repo(tmp_path_factory.mktemp("repo"))
    write_toy_provider(repo, GOOD_TEMPLATE)
    write_extras(repo)
    for name in NAMES[:3]:
        repo.write(f"clusters/{name}.yaml", toy_cluster(name, namespace=SPACES[name]))
    # A file with a pass-through object beside its cluster, in a namespace of its own.
    repo.write("clusters/mixed.yaml", toy_cluster("dbm", namespace="third") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: third}\n")
    # Through the stat-trusting reader too (`later`: every file recorded is trusted by its stat,
    # so an edit is seen by its stat alone), changed files rendered alone beside the recorded
    # rest, and a repository going back to an earlier state.
    render_incremental(repo.root, repo.root / "out", cache=shared_cache)
    for step in edits:
        for edit in step:  # one or two edits, then a render: a world and a cluster edit together
            apply(repo, edit)
        edit = step
        files = read_repository(repo.root)
        uncached_result = render_repository(files)
        uncached = seen(uncached_result)
        for _ in range(2):  # the second is a replay
            assert written(render_incremental(repo.root, repo.root / "out", cache=shared_cache)) == written(uncached_result), edit
        assert seen(render_repository(files, cache=shared_cache)) == uncached, edit
        parallel.PARALLEL_FROM, before = 1, parallel.PARALLEL_FROM  # two processes, even for a few clusters
        try:
            assert seen(render_repository(read_repository(repo.root), cache=shared_cache, jobs=2)) == uncached, edit
        finally:
            parallel.PARALLEL_FROM = before
    assert shared_cache.warning is None


def test_no_value_that_may_be_secret_is_written_to_the_cache(repo, tmp_path):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db.yaml", toy_cluster("db"))
    repo.write(
        "clusters/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db-secrets, namespace: ns}\nstringData: {password: hunter2-not-cached}\n",
    )
    store = Store.open(tmp_path / "cache")
    cached = render_repository(read_repository(repo.root), cache=store)
    assert seen(cached) == seen(render_repository(read_repository(repo.root)))
    for _ in range(2):  # no replay of a render holding a Secret: it is rendered each time
        again = render_incremental(repo.root, repo.root / "out", cache=store)
        assert not again.replayed and seen(again) == seen(cached)
    assert entries(tmp_path / "cache") and not [p for p in entries(tmp_path / "cache") if b"hunter2" in p.read_bytes()]


# --- stat before read, and replays ------------------------------------------------------------


def counted_reads(monkeypatch) -> list[str]:
    """The names the snapshot reader reads (rather than answers from a record)."""
    names: list[str] = []
    real = snapshot.read_text

    def read(path, name):
        names.append(name)
        return real(path, name)

    monkeypatch.setattr(snapshot, "read_text", read)
    return names


def toy_repository(repo: Repo, clusters: int = 2) -> None:
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index in range(clusters):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}"))


def test_no_change_reads_no_file_and_replays_the_render(repo, tmp_path, monkeypatch, later):
    toy_repository(repo)
    store = Store.open(tmp_path / "cache")
    first = render_incremental(repo.root, repo.root / "out", cache=store)
    reads = counted_reads(monkeypatch)
    again = render_incremental(repo.root, repo.root / "out", cache=store)
    assert again.replayed and not first.replayed and reads == []
    assert written(again) == written(first) == written(render_repository(read_repository(repo.root)))


def test_an_edit_that_keeps_size_and_mtime_is_seen(repo, tmp_path, later):
    toy_repository(repo)
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    target = repo.root / "clusters/db0.yaml"
    before = target.stat()
    target.write_text(toy_cluster("db0", 2))  # replicas 1 -> 2: the same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime: ctime still moves
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert not after.replayed  # seen by its stat: no replay of the render before the edit
    assert written(after) == written(render_repository(read_repository(repo.root)))
    assert b'replicas: "2"' in b"".join(after.plan.files.values())


def test_a_file_written_within_the_racy_window_is_read_by_every_run(repo, tmp_path, monkeypatch):
    toy_repository(repo)  # written just now, and judged by the real clock: never trusted by stat
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    reads = counted_reads(monkeypatch)
    again = render_incremental(repo.root, repo.root / "out", cache=store)
    assert "clusters/db0.yaml" in reads and "providers/toy/configmap.yaml.j2" in reads
    assert again.replayed  # read, found unchanged: the render is still taken whole


def test_a_render_is_keyed_by_the_texts_it_read_when_a_file_changed_after_its_stat(repo, tmp_path, monkeypatch, later):
    toy_repository(repo)
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    repo.write("clusters/db1.yaml", toy_cluster("db1", 2))  # a change: the world's texts are read after their stat
    real = snapshot.read_text
    # The provider's template changes between its stat (unchanged) and its read.
    edited = GOOD_TEMPLATE + "  team: {{ 'a' | tojson }}\n"
    monkeypatch.setattr(snapshot, "read_text", lambda path, name: (edited, None) if name.endswith(".j2") else real(path, name))
    moved = render_incremental(repo.root, repo.root / "out", cache=store)
    monkeypatch.setattr(snapshot, "read_text", real)
    write_toy_provider(repo, GOOD_TEMPLATE)  # as it was: this run's fingerprint is not the one that render was kept under
    again = render_incremental(repo.root, repo.root / "out", cache=store)
    assert b"team" in b"".join(moved.plan.files.values()) and b"team" not in b"".join(again.plan.files.values())
    assert written(again) == written(render_repository(read_repository(repo.root)))


def test_a_timestamp_beyond_64_bits_of_nanoseconds_is_recorded_and_seen(repo, tmp_path, later):
    toy_repository(repo)
    (repo.root / "out/ns").mkdir(parents=True)
    store = Store.open(tmp_path / "cache")
    first = render_incremental(repo.root, repo.root / "out", cache=store)
    for target in (repo.root / "clusters/db0.yaml", repo.root / "clusters", repo.root / "out/ns"):
        os.utime(target, (0, 2**63 // 10**9 + 10**9))  # the year 2300: mtime_ns is past 2**63
    again = [render_incremental(repo.root, repo.root / "out", cache=store) for _ in range(2)]
    assert [written(result) for result in again] == [written(first)] * 2 and again[1].replayed
    repo.write("clusters/db0.yaml", toy_cluster("db0", 2))
    os.utime(repo.root / "clusters/db0.yaml", (0, 2**63 // 10**9 + 10**9))
    assert written(render_incremental(repo.root, repo.root / "out", cache=store)) == written(render_repository(read_repository(repo.root)))


def test_errors_of_a_replayed_render_are_reported(repo, tmp_path, later):
    write_toy_provider(repo, GOOD_TEMPLATE.replace("| string | tojson", ""))  # refused by the schema
    repo.write("clusters/db.yaml", toy_cluster("db"))
    store = Store.open(tmp_path / "cache")
    runs = [render_incremental(repo.root, repo.root / "out", cache=store) for _ in range(2)]
    assert runs[1].replayed and runs[1].failed and written(runs[0]) == written(runs[1])
    assert any("does not match the operator's schema" in str(d) for d in runs[1].diagnostics)


def test_a_corrupt_or_foreign_run_entry_or_manifest_is_never_trusted(repo, tmp_path, later):
    toy_repository(repo)
    store = Store.open(tmp_path / "cache")
    first = render_incremental(repo.root, repo.root / "out", cache=store)
    for entry in entries(tmp_path / "cache"):
        data = entry.read_bytes()
        entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # every entry, one bit flipped
    again = render_incremental(repo.root, repo.root / "out", cache=store)
    assert not again.replayed and written(again) == written(first)
    dumps = __import__("marshal").dumps

    held: dict[str, bytes] = {}  # a layout's buckets of spaces, by key

    def run_entry(buckets=None, digests=None, layout=None, version=snapshot.RUN_FORMAT):
        entry = dumps((version, "x", 1, buckets or {}, digests or {}, [], "", b"id"))
        return snapshot._decode_run(entry, lambda key: layout_module.decode_spaces(key, held.get(key)), lambda: dumps((b"id", layout)))

    def spaces_bucket(spaces):
        payload = dumps(spaces)
        held[layout_module.spaces_key(payload)] = payload
        return {layout_module.bucket_of_namespace(next(iter(spaces))): layout_module.spaces_key(payload)}

    assert run_entry() is not None and run_entry()[1].parts == {}  # a render not taken apart
    assert run_entry(version=snapshot.RUN_FORMAT + 1) is None  # another format
    assert run_entry(layout=({"c.yaml": "d\0ns"}, {}, ()))[1].parts == {"c.yaml": layout_module.Part("d", ("ns",))}
    assert run_entry(layout=({"c.yaml": ("d",)}, {}, ()))[1].parts == {}  # not a part: the render is not taken apart
    space = (("db",), (("", "v1", "ConfigMap", "db-settings"),))
    whole = run_entry(layout=({"c.yaml": "d\0ns"}, spaces_bucket({"ns": space}), ()))[1]
    assert whole.spaces == {"ns": layout_module.Space(*space)} and whole.parts == {"c.yaml": layout_module.Part("d", ("ns",))}
    assert run_entry(layout=({"c.yaml": "d\0ns"}, spaces_bucket({"ns": (("db",), (("v1", "ConfigMap"),))}), ()))[1].parts == {}
    lost = {number: "0" * 64 for number in spaces_bucket({"ns": space})}  # a bucket that cannot be read
    assert run_entry(layout=({"c.yaml": "d\0ns"}, lost, ()))[1].parts == {}
    entry = dumps((snapshot.RUN_FORMAT, "x", 1, {}, {}, [], "", b"id"))
    layout = ({"c.yaml": "d\0ns"}, {}, ())
    assert snapshot._decode_run(entry, held.get, lambda: None)[1].parts == {}  # its layout's entry gone
    assert snapshot._decode_run(entry, held.get, lambda: dumps((b"other", layout)))[1].parts == {}  # another run's
    assert snapshot._decode_run(entry, held.get, lambda: dumps((b"id", layout)))[1].parts == {"c.yaml": layout_module.Part("d", ("ns",))}
    assert run_entry(layout=({"c.yaml": "d\0ns"}, {}, (("ns", ("", "v1", "ConfigMap")),)))[1].parts == {}  # not an identity
    assert run_entry(buckets={0: "not a key"}) is None
    assert run_entry(digests={"ns/db.yaml": b"short"}) is None  # not a digest
    payload = dumps({"ns/db.yaml": b"---\n"})
    assert snapshot._decode_bucket(snapshot._bucket_key(payload), payload) == {"ns/db.yaml": b"---\n"}
    assert snapshot._decode_bucket("0" * 64, payload) is None  # not the entry its key names
    assert snapshot._decode_manifest(__import__("marshal").dumps((snapshot.FORMAT, {"/f": ((1, 2), "d")}))) == {}


def test_render_after_out_was_edited_judges_destructive_changes_as_without_the_cache(repo, tmp_path, monkeypatch, later):
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    toy_repository(repo)
    runner = CliRunner()
    command = ["render", "--repo", str(repo.root)]
    assert runner.invoke(cli_main, command).exit_code == 0
    (repo.root / "out/ns/db0.yaml").unlink()
    (repo.root / "out/ns/gone.yaml").write_text("stale\n")
    (repo.root / "out/.everest-render-index").write_text((repo.root / "out/.everest-render-index").read_text() + "ns/gone.yaml\n")
    runs = [runner.invoke(cli_main, [*command, "--check", *flags]) for flags in ([], ["--no-cache"])]
    assert runs[0].exit_code == runs[1].exit_code == 1 and runs[0].output == runs[1].output
    assert "missing: " in runs[0].output


def three_namespaces(repo: Repo, tmp_path: Path, monkeypatch) -> tuple[CliRunner, list[str]]:
    """The toy provider's clusters db0-db2 in namespaces a-c, rendered through a cache of
    tmp_path's: the runner and the render command."""
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index, namespace in enumerate(["a", "b", "c"]):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}", namespace=namespace))
    return CliRunner(), ["render", "--repo", str(repo.root)]


def buckets_read(monkeypatch) -> list[int]:
    """The numbers of the run entry's buckets read from the cache (cache/kept.py)."""
    read: list[int] = []
    real = snapshot.Snapshot._bucket
    monkeypatch.setattr(snapshot.Snapshot, "_bucket", lambda self, number: read.append(number) or real(self, number))
    return read


def test_out_files_taken_from_the_cache_are_read_only_for_what_out_lacks(repo, tmp_path, monkeypatch, later):
    # The run entry holds each out/ file's digest: with out/ as rendered, no bucket is read;
    # a bucket lost meanwhile (the cache is safe to delete) is rendered again when needed.
    runner, command = three_namespaces(repo, tmp_path, monkeypatch)
    for _ in range(2):  # the second records out/
        assert runner.invoke(cli_main, command).exit_code == 0
    expected = tree(repo.root / "out")
    store = Store.open(tmp_path / "cache")
    kept = snapshot.Snapshot(store, renderer_identity(), repo.root, repo.root / "out", "None")
    assert kept.last(lambda: {}) is not None and kept.buckets
    read = buckets_read(monkeypatch)
    assert runner.invoke(cli_main, command).exit_code == 0
    assert runner.invoke(cli_main, [*command, "--check"]).exit_code == 0
    assert read == []
    for key in kept.buckets.values():
        store._path(key).unlink()
    (repo.root / "out/a/db0.yaml").unlink()
    done = runner.invoke(cli_main, command)
    assert done.exit_code == 0 and tree(repo.root / "out") == expected and read
    assert runner.invoke(cli_main, [*command, "--check"]).output == runner.invoke(cli_main, [*command, "--check", "--no-cache"]).output
    repo.write("clusters/db1.yaml", toy_cluster("db1", 2, namespace="b"))  # a change keeps the lost buckets anew
    assert runner.invoke(cli_main, command).exit_code == 0
    kept = snapshot.Snapshot(store, renderer_identity(), repo.root, repo.root / "out", "None")
    assert kept.last(lambda: {}) is not None and all(store.has(key) for key in kept.buckets.values())
    assert tree(repo.root / "out") == {**expected, "b/db1.yaml": tree(repo.root / "out")["b/db1.yaml"]}


def test_out_files_read_within_the_racy_window_are_compared_by_digest_reading_no_bucket(repo, tmp_path, monkeypatch):
    # out/ just written (judged by the real clock): its stat cannot stand for its bytes, so a
    # replay reads each file, and compares it with the digest the run entry holds rather than
    # with the bytes of the file's bucket (a fleet's whole out/ after a fresh render).
    runner, command = three_namespaces(repo, tmp_path, monkeypatch)
    assert runner.invoke(cli_main, command).exit_code == 0
    expected = tree(repo.root / "out")
    read = buckets_read(monkeypatch)
    opened: list[str] = []
    reader = output._read_regular
    monkeypatch.setattr(output, "_read_regular", lambda target, *rest: opened.append(target) or reader(target, *rest))
    assert runner.invoke(cli_main, command).exit_code == 0
    assert read == [] and f"{repo.root / 'out'}/a/db0.yaml" in opened
    (repo.root / "out/b/db1.yaml").write_text("edited by hand\n")  # read, not holding its digest: written again
    assert runner.invoke(cli_main, command).exit_code == 0
    assert tree(repo.root / "out") == expected


def test_a_lost_bucket_that_cannot_be_made_again_stops_the_render_writing_nothing(repo, tmp_path, monkeypatch, later):
    from everest_render import incremental
    from everest_render.cache.kept import KeptFilesLost

    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    toy_repository(repo)
    runner = CliRunner()
    command = ["render", "--repo", str(repo.root)]
    assert runner.invoke(cli_main, command).exit_code == 0
    store = Store.open(tmp_path / "cache")
    kept = snapshot.Snapshot(store, renderer_identity(), repo.root, repo.root / "out", "None")
    assert kept.last(lambda: {}) is not None
    for key in kept.buckets.values():
        store._path(key).unlink()
    (repo.root / "out/ns/db0.yaml").unlink()
    before = tree(repo.root / "out")

    def changed_meanwhile(*_: object) -> None:  # as when the repository changed during the run too
        raise KeptFilesLost("the render cache and the repository both changed during the run: run it again")

    monkeypatch.setattr(incremental, "_recovered", changed_meanwhile)
    done = runner.invoke(cli_main, command)
    assert done.exit_code == 3 and "error: the render cache and the repository both changed" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert tree(repo.root / "out") == before


def test_the_kustomization_of_a_replay_lists_the_files_of_that_render(repo, tmp_path, monkeypatch, later):
    monkeypatch.setenv("EVEREST_RENDER_CACHE", str(tmp_path / "cache"))
    toy_repository(repo)
    runner = CliRunner()
    command = ["render", "--repo", str(repo.root), "--kustomization"]
    for _ in range(3):  # the listing is made, then taken from the cache
        assert runner.invoke(cli_main, command).exit_code == 0
        assert runner.invoke(cli_main, [*command, "--check", "--no-cache"]).exit_code == 0
    repo.write("clusters/db9.yaml", toy_cluster("db9", namespace="new"))
    for _ in range(2):  # other names: another listing
        assert runner.invoke(cli_main, command).exit_code == 0
        assert b"new/db9.yaml" in (repo.root / "out/kustomization.yaml").read_bytes()
        assert runner.invoke(cli_main, [*command, "--check", "--no-cache"]).exit_code == 0


def test_one_changed_cluster_file_is_the_only_cluster_file_read(repo, tmp_path, monkeypatch, later):
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index, namespace in enumerate(["a", "b", "b", "c"]):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}", namespace=namespace))
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    repo.write("clusters/db0.yaml", toy_cluster("db0", 3, namespace="a"))
    reads = counted_reads(monkeypatch)
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert [name for name in reads if name.startswith("clusters/")] == ["clusters/db0.yaml"]
    assert [str(c.ref) for c in after.resolved.clusters] == ["a/db0"] and after.cluster_count == 4
    assert written(after) == written(render_repository(read_repository(repo.root)))
    repo.write("clusters/db1.yaml", toy_cluster("db1", 3, namespace="b"))  # its namespace is rendered whole
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert [str(c.ref) for c in after.resolved.clusters] == ["b/db1", "b/db2"]
    assert written(after) == written(render_repository(read_repository(repo.root)))
    repo.write("clusters/db3.yaml", toy_cluster("db3", namespace="a"))  # moved: both namespaces
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert sorted(str(c.ref) for c in after.resolved.clusters) == ["a/db0", "a/db3"]
    assert written(after) == written(render_repository(read_repository(repo.root)))


def test_what_spans_files_is_judged_over_the_whole_repository(repo, tmp_path, later):
    # Every cluster's ConfigMap has one name: clusters in one namespace, from different files,
    # render the same object. Only the changed file is rendered afresh, so the duplicate
    # is found beside the clusters taken from the cache, and reported as a full render does.
    write_toy_provider(repo, GOOD_TEMPLATE.replace('(cluster.name ~ "-settings")', '"settings"'))
    repo.write("clusters/db0.yaml", toy_cluster("db0", namespace="a"))
    repo.write("clusters/db1.yaml", toy_cluster("db1", namespace="b"))
    store = Store.open(tmp_path / "cache")
    assert not render_incremental(repo.root, repo.root / "out", cache=store).failed
    repo.write("clusters/db1.yaml", toy_cluster("db1", namespace="a"))
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert after.failed and written(after) == written(render_repository(read_repository(repo.root)))
    assert any("duplicate object ConfigMap a/settings" in str(d) for d in after.diagnostics)
    repo.write("clusters/db1.yaml", toy_cluster("db0", namespace="a"))  # the same cluster twice
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert after.failed and written(after) == written(render_repository(read_repository(repo.root)))


def test_namespaces_a_change_touches_are_rendered_whole_and_the_rest_taken(repo, tmp_path, later):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db0.yaml", toy_cluster("db0", namespace="a"))
    repo.write("clusters/db1.yaml", toy_cluster("db1", namespace="a"))
    repo.write("clusters/pair.yaml", toy_cluster("p0", namespace="b") + "---\n" + toy_cluster("p1", namespace="c"))
    repo.write("clusters/db2.yaml", toy_cluster("db2", namespace="c"))
    repo.write("clusters/db3.yaml", toy_cluster("db3", namespace="d"))
    store = Store.open(tmp_path / "cache")

    def rendered_afresh() -> list[str]:
        result = render_incremental(repo.root, repo.root / "out", cache=store)
        assert written(result) == written(render_repository(read_repository(repo.root)))
        return sorted(str(c.ref) for c in result.resolved.clusters)

    assert len(rendered_afresh()) == 6
    (repo.root / "clusters/db1.yaml").unlink()  # removed: its namespace is rendered again
    assert rendered_afresh() == ["a/db0"]
    repo.write("clusters/pair.yaml", toy_cluster("p0", 2, namespace="b") + "---\n" + toy_cluster("p1", namespace="c"))
    assert rendered_afresh() == ["b/p0", "c/db2", "c/p1"]  # a file spanning namespaces takes them all
    repo.write("clusters/db2.yaml", toy_cluster("db2", 2, namespace="c"))
    assert rendered_afresh() == ["b/p0", "c/db2", "c/p1"]  # ... whichever of them changed
    write_toy_provider(repo, GOOD_TEMPLATE + "  team: {{ 'a' | tojson }}\n")  # the world changed, and a cluster
    repo.write("clusters/db0.yaml", toy_cluster("db0", 2, namespace="a"))
    assert len(rendered_afresh()) == 5  # every namespace again: d/db3 was rendered with the old template
    repo.write("clusters/db3.yaml", toy_cluster("db3", namespace="d") + "---\napiVersion: rbac.authorization.k8s.io/v1\n"
               "kind: ClusterRole\nmetadata: {name: reader, namespace: d}\nrules: []\n")  # not where it says it is
    rendered_afresh()


def test_a_change_of_one_file_decodes_only_the_namespaces_it_touches(repo, tmp_path, monkeypatch, later):
    # The run entry's layout (cache/layout.py): a file known changed since the render of the
    # walk record's inputs renders from its namespaces' parts and spaces alone, not the whole
    # fleet's; an added file (the walk runs again) is judged from every file's digest.
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index, namespace in enumerate(["a", "b", "b", "c"]):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}", namespace=namespace))
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    whole: list[str] = []
    every_part, every_space = layout_module.Layout.every_part, layout_module.Layout.every_space
    monkeypatch.setattr(layout_module.Layout, "every_part", lambda self: whole.append("parts") or every_part(self))
    monkeypatch.setattr(layout_module.Layout, "every_space", lambda self: whole.append("spaces") or every_space(self))
    repo.write("clusters/db1.yaml", toy_cluster("db1", 3, namespace="b"))
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert sorted(str(c.ref) for c in after.resolved.clusters) == ["b/db1", "b/db2"] and after.cluster_count == 4
    assert written(after) == written(render_repository(read_repository(repo.root))) and whole == []
    repo.write("clusters/db4.yaml", toy_cluster("db4", namespace="d"))
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert [str(c.ref) for c in after.resolved.clusters] == ["d/db4"] and sorted(whole) == ["parts", "spaces"]
    assert written(after) == written(render_repository(read_repository(repo.root)))


def test_objects_named_outside_their_namespace_are_judged_beside_a_change_elsewhere(repo, tmp_path, later):
    # A cluster-scoped object (out/_cluster/) and a Namespace are named in no namespace: the
    # layout keeps them apart, and a change in another namespace is judged beside them.
    write_toy_provider(repo, GOOD_TEMPLATE)
    role = "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: []\n"
    repo.write("clusters/db0.yaml", toy_cluster("db0", namespace="a") + role + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    repo.write("clusters/db1.yaml", toy_cluster("db1", namespace="b"))
    store = Store.open(tmp_path / "cache")
    render_incremental(repo.root, repo.root / "out", cache=store)
    for replicas in (2, 3):
        repo.write("clusters/db1.yaml", toy_cluster("db1", replicas, namespace="b"))
        after = render_incremental(repo.root, repo.root / "out", cache=store)
        assert [str(c.ref) for c in after.resolved.clusters] == ["b/db1"]
        assert written(after) == written(render_repository(read_repository(repo.root)))
    repo.write("clusters/db1.yaml", toy_cluster("db1", namespace="b") + role)  # the same object again
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert after.failed and written(after) == written(render_repository(read_repository(repo.root)))


def test_with_extensions_in_effect_a_change_renders_only_the_namespaces_it_touches(repo, tmp_path, later):
    # The example fleet with the built-in extensions on: a namespace's shared objects (one
    # ExternalSecret for a Secret two clusters need) come from its clusters, all rendered again.
    import shutil

    from tests.conftest import PROJECT_ROOT
    from tests.test_builtin_extensions import SETTINGS as EXTENSIONS_ON

    shutil.copytree(PROJECT_ROOT / "clusters", repo.root / "clusters")
    repo.write("everest-render.yaml", EXTENSIONS_ON)
    store = Store.open(tmp_path / "cache")
    first = render_incremental(repo.root, repo.root / "out", cache=store)
    assert b"kind: ExternalSecret" in first.plan.files["shop/_extensions.yaml"]
    orders = repo.root / "clusters/shop/orders.yaml"
    orders.write_text(orders.read_text().replace("team: checkout", "team: checkout-2", 1))
    after = render_incremental(repo.root, repo.root / "out", cache=store)
    assert sorted(str(c.ref) for c in after.resolved.clusters) == ["shop/catalog", "shop/inventory", "shop/orders"]  # v2/inventory.yaml is of shop
    assert written(after) == written(render_repository(read_repository(repo.root)))
    assert after.plan.files["shop/orders.yaml"] != first.plan.files["shop/orders.yaml"]
