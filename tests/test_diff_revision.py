"""`diff --against REF`: both sides rendered in one run, a cluster the same on both rendered once.

Each side must be exactly what rendering it alone gives: the revision's side is checked against
`render_at_revision` (the revision unpacked and rendered by itself), today's against a plain
render, so a cluster wrongly shared between the sides shows as a difference here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import everest_render.pipeline as pipeline
from everest_render.commands.git_revision import _archive, _unpack, render_at_revision, render_with_revision
from everest_render.commands.revision_files import files_at_revision
from everest_render.pipeline import read_repository, render_repository
from everest_render.testing import Repo
from tests.conftest import PROJECT_ROOT, mongodb
from tests.test_cli import run
from tests.test_guardrails import PG_BACKUPS, STORAGES, cluster

GIT = ["-c", "user.email=t@example.com", "-c", "user.name=t"]


def commit(repo: Repo) -> None:
    if not (repo.root / ".git").exists():
        subprocess.run(["git", "-C", str(repo.root), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(repo.root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo.root), *GIT, "commit", "-qm", "change"], check=True)


def both_sides(repo: Repo) -> tuple[dict[str, bytes], dict[str, bytes], tuple[str, ...]]:
    """Today's files, the revision's files and its diagnostics, from one `render_with_revision`
    (without the cache: the sharing is the run's own)."""
    today, earlier = render_with_revision(repo.root, repo.root / "out", "HEAD", jobs=1, cache=None)
    before = earlier()
    return dict(today.plan.files), dict(before.files), tuple(str(d) for d in before.diagnostics)


def alone(repo: Repo) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Each side rendered by itself: today's repository, and the revision unpacked."""
    today = render_repository(read_repository(repo.root, repo.root / "out"))
    return dict(today.plan.files), dict(render_at_revision(repo.root, "HEAD").plan.files)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The clusters rendered (each `render_slice` of one cluster), by name."""
    names: list[str] = []
    render_slice = pipeline.render_slice

    def counting(clusters, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.extend(c.ref.name for c in clusters)
        return render_slice(clusters, *args, **kwargs)

    monkeypatch.setattr(pipeline, "render_slice", counting)
    return names


def test_a_cluster_the_same_on_both_sides_renders_once_and_a_changed_one_still_differs(repo, counted):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    today, before, diagnostics = both_sides(repo)
    # Three renders, not four: carts serves both sides (without any persistent cache).
    assert sorted(counted) == ["carts", "orders", "orders"]
    assert (today, before) == alone(repo)
    assert today["shop/carts.yaml"] == before["shop/carts.yaml"]
    assert today["shop/orders.yaml"] != before["shop/orders.yaml"]
    assert diagnostics == ()


PROVIDER = "percona-server-mongodb"


def own_provider(repo: Repo) -> Path:
    """A copy of the built-in provider in the repository (it replaces the built-in)."""
    folder = repo.root / "providers" / PROVIDER
    shutil.copytree(PROJECT_ROOT / "providers" / PROVIDER, folder, ignore=shutil.ignore_patterns("cases", "crds", "README.md"))
    return folder


def _settings(repo: Repo, wave: str) -> None:
    repo.write(
        "everest-render.yaml",
        f'apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  gitops:\n    annotations:\n      argocd.argoproj.io/sync-wave: "{wave}"\n',
    )


def _storage(repo: Repo, bucket: str) -> None:
    repo.write("clusters/shop/storages.yaml", STORAGES.replace("bucket-a", bucket))


def _template(repo: Repo, finalizer: str) -> None:
    template = repo.root / "providers" / PROVIDER / "perconaservermongodb.yaml.j2"
    original = (PROJECT_ROOT / "providers" / PROVIDER / "perconaservermongodb.yaml.j2").read_text()
    marker = "    - percona.com/delete-psmdb-pvc\n"
    assert marker in original
    template.write_text(original.replace(marker, f"{marker}    - example.com/{finalizer}\n", 1))


def _definition(repo: Repo, text: str) -> None:
    definition = repo.root / "providers" / PROVIDER / "definition.yaml"
    original = (PROJECT_ROOT / "providers" / PROVIDER / "definition.yaml").read_text()
    definition.write_text(original + f"# {text}\n")


# What differs between the revision and the working tree, outside the clusters' own files: the
# clusters using it must be rendered on each side, never shared.
CHANGES = {
    "settings": (lambda repo: _settings(repo, "2"), lambda repo: _settings(repo, "3")),
    "backup storage": (lambda repo: _storage(repo, "bucket-a"), lambda repo: _storage(repo, "bucket-c")),
    "provider template": (lambda repo: _template(repo, "one"), lambda repo: _template(repo, "two")),
    "definition": (lambda repo: _definition(repo, "one"), lambda repo: _definition(repo, "two")),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_a_cluster_whose_other_inputs_differ_is_rendered_on_each_side(repo, counted, what):
    first, second = CHANGES[what]
    if what in ("provider template", "definition"):
        own_provider(repo)
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/pg.yaml", cluster("percona-postgresql", PG_BACKUPS, name="pg"))
    _storage(repo, "bucket-a")
    first(repo)
    commit(repo)
    second(repo)
    today, before, _ = both_sides(repo)
    rendered = sorted(counted)
    assert (today, before) == alone(repo)
    changed = {"settings": {"orders", "pg"}, "backup storage": {"pg"}, "provider template": {"orders"}, "definition": {"orders"}}[what]
    # Each cluster the change reaches is rendered twice, every other once.
    assert rendered == sorted([*changed, "orders", "pg"])
    if what != "definition":  # a comment in the definition changes no output, only the key
        assert {path for path in today if today[path] != before.get(path)} == {f"shop/{name}.yaml" for name in changed}


def test_an_error_only_at_the_revision_is_reported_as_before(repo):
    repo.write("clusters/shop/orders.yaml", mongodb().replace("percona-server-mongodb", "no-such-provider"))
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb())
    result = run("diff", "--repo", str(repo.root), "--against", "HEAD", "--no-cache")
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("at HEAD: ")]
    assert line.startswith("at HEAD: clusters/shop/orders.yaml:7:13: ")
    assert "no-such-provider" in line
    assert result.stdout.startswith("--- /dev/null\n+++ b/out/shop/orders.yaml\n")


def test_a_file_without_documents_on_both_sides_is_shared_as_it_is(repo):
    # An empty file (and one of comments only) loads to no document; kept for the revision's
    # resolve, its documents are that empty tuple, not a file to load again.
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/empty.yaml", "")
    repo.write("clusters/shop/notes.yaml", "# nothing here yet\n")
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    today, before, diagnostics = both_sides(repo)
    assert (today, before) == alone(repo)
    assert diagnostics == ()
    result = run("diff", "--repo", str(repo.root), "--against", "HEAD", "--no-cache")
    assert result.exit_code == 1, result.stderr
    assert "+++ b/out/shop/orders.yaml" in result.stdout


def read_unpacked(repo: Repo, scratch: Path):
    _unpack(repo.root, "HEAD", scratch)
    return read_repository(scratch, scratch / "out")


def test_the_revision_read_in_memory_is_what_reading_it_unpacked_gives(repo, tmp_path):
    own_provider(repo)
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/notes.md", "not an input\n")
    repo.write("clusters/.hidden/skipped.yaml", "not: read\n")
    _settings(repo, "1")
    _template(repo, "one")
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    repo.write("clusters/shop/notes.md", "still not an input\n")
    _settings(repo, "2")
    _template(repo, "two")
    today = read_repository(repo.root, repo.root / "out")
    found = files_at_revision(_archive(repo.root, "HEAD"), repo.root, repo.root / "out", today)
    assert found is not None
    assert found == read_unpacked(repo, tmp_path / "unpacked")
    assert found != today


def by_tarfile(archive: bytes) -> dict[str, bytes] | None:
    """What revision_files._regular_files reads, as tarfile reads it."""
    import io
    import tarfile

    found = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.isdir():
                continue
            handle = tar.extractfile(member) if member.isreg() else None
            if handle is None:
                return None
            found[member.name.rstrip("/")] = handle.read()
    return found


@pytest.mark.parametrize("link", [False, True], ids=["files and folders", "a link"])
def test_the_revision_s_archive_is_read_as_tarfile_reads_it(repo, link):
    from everest_render.commands.revision_files import _regular_files

    deep = "clusters/" + "/".join(["a-folder-name-of-some-length"] * 10)  # longer than ustar's 255: a pax header
    repo.write(f"{deep}/orders.yaml", mongodb())
    repo.write(f"clusters/{'n' * 90}/{'m' * 90}.yaml", mongodb(name="carts"))  # in ustar's prefix field
    repo.write("clusters/shop/naïve.yaml", mongodb(name="naive"))
    repo.write("clusters/shop/empty.yaml", "")
    repo.write("clusters/shop/big.yaml", "# " + "x" * 5000 + "\n")
    (repo.root / "clusters/shop/run.sh").write_text("#!/bin/sh\n")
    (repo.root / "clusters/shop/run.sh").chmod(0o755)
    if link:
        os.symlink("orders.yaml", repo.root / "clusters/shop/alias.yaml")
    commit(repo)
    archive = _archive(repo.root, "HEAD")
    assert f" path={deep}/orders.yaml\n".encode() in archive  # as git writes it
    found = _regular_files(archive)
    assert found == by_tarfile(archive)
    assert (found is None) == link
    if found is not None:
        assert found[f"{deep}/orders.yaml"] == mongodb().encode() and found["clusters/shop/empty.yaml"] == b""
    assert _regular_files(b"") == {}
    assert _regular_files(archive[:700]) is None  # cut short
    assert _regular_files(archive[:148] + b"0000000\0" + archive[156:]) is None  # a header that does not add up


@pytest.mark.parametrize("shape", ["a file only in the working tree", "a link", "an ignore file changed", "a text refused"])
def test_a_revision_shaped_otherwise_is_unpacked_and_read(repo, tmp_path, shape):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write(".everestignore", "drafts/\n")
    if shape == "a text refused":
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts") + "# \x07\n")
    commit(repo)
    if shape == "a file only in the working tree":
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    elif shape == "a link":
        os.symlink("orders.yaml", repo.root / "clusters/shop/alias.yaml")
    elif shape == "an ignore file changed":
        repo.write(".everestignore", "other/\n")
    else:
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    today = read_repository(repo.root, repo.root / "out")
    assert files_at_revision(_archive(repo.root, "HEAD"), repo.root, repo.root / "out", today) is None
    # The run still renders the revision as unpacked.
    assert both_sides(repo)[:2] == alone(repo)


def test_the_revision_read_on_a_process_of_its_own_is_what_a_read_here_gives(repo, monkeypatch):
    # On several CPUs, the revision is read on a forked process while today's side resolves:
    # its texts, or why it cannot be read, are what reading it here gives; a process that
    # answers nothing is made up for by reading it here.
    from everest_render.commands import git_revision

    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    parent, answer = os.getpid(), git_revision._answer
    here: list[str] = []

    def answering(*args):  # type: ignore[no-untyped-def]
        if os.getpid() == parent:
            here.append(args[2])
        elif args[2] == "dies":
            os._exit(1)
        repo_root, out_dir, revision, today = args
        return answer(repo_root, out_dir, "HEAD" if revision == "dies" else revision, today)

    monkeypatch.setattr(git_revision, "_answer", answering)

    def sides(revision: str, jobs: int):  # type: ignore[no-untyped-def]
        today, earlier = render_with_revision(repo.root, repo.root / "out", revision, jobs=jobs, cache=None)
        try:
            return dict(today.plan.files), dict(earlier().files)
        except git_revision.RevisionError as error:
            return dict(today.plan.files), str(error)

    assert sides("HEAD", 2) == sides("HEAD", 1) == alone(repo)
    assert here == []  # read apart, not here
    unknown = sides("no-such-revision", 2)
    assert unknown == sides("no-such-revision", 1) and "no-such-revision" in unknown[1]
    assert sides("dies", 2) == alone(repo) and here == ["dies"]


def test_with_a_cold_cache_today_s_side_fills_it_as_a_render_does(repo, tmp_path, counted):
    from everest_render.cache.store import Store

    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    store = Store.open(tmp_path / "cache")
    today, earlier = render_with_revision(repo.root, repo.root / "out", "HEAD", jobs=1, cache=store)
    assert dict(earlier().files) == alone(repo)[1]
    counted.clear()
    saved = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    # Every loaded file and every cluster of today's side is there: a render takes it all.
    again = render_repository(read_repository(repo.root, repo.root / "out"), cache=Store.open(tmp_path / "cache"))
    assert (counted, again.plan.files) == ([], today.plan.files)
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == saved


def test_on_several_processes_both_sides_are_what_one_process_gives(tmp_path):
    # A fleet large enough to fork workers (parallel.PARALLEL_FROM): today's side renders on
    # them while the revision is resolved here; with a cold cache, filled meanwhile.
    import sys

    from everest_render.cache.store import Store
    from everest_render.parallel import PARALLEL_FROM

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    from fleet import write_fleet

    repo = Repo(write_fleet(tmp_path / "fleet", PARALLEL_FROM + 1))
    commit(repo)
    changed = next(repo.root.glob("clusters/*/db-00001.yaml"))
    changed.write_text(changed.read_text().replace("replicas: 3", "replicas: 5", 1))
    one_today, one_earlier = render_with_revision(repo.root, repo.root / "out", "HEAD", jobs=1)
    several_today, several_earlier = render_with_revision(repo.root, repo.root / "out", "HEAD", jobs=2, cache=Store.open(tmp_path / "cache"))
    assert several_today.plan.files == one_today.plan.files
    assert several_earlier() == one_earlier()
    assert {path for path, data in one_today.plan.files.items() if one_earlier().files[path] != data} == {"team-01/db-00001.yaml"}


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The clusters whose cache key was computed, as ``namespace/name``."""
    from everest_render.cache.entries import KeyMaker

    refs: list[str] = []
    cluster_key = KeyMaker.cluster_key

    def counting(self, cluster):  # type: ignore[no-untyped-def]
        refs.append(str(cluster.ref))
        return cluster_key(self, cluster)

    monkeypatch.setattr(KeyMaker, "cluster_key", counting)
    return refs


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n  namespace: web\ndata:\n  note: {note}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n  labels:\n    team: {note}\n"
# What changes since the revision, and the revision's clusters that are keyed for it (the others
# render as today's at the same place: no change touched their namespace, nor the world).
TOUCHING = {
    "a cluster of shop": (lambda repo: repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n")), {"shop/carts", "shop/orders"}),
    "a ConfigMap of web": (lambda repo: repo.write("clusters/web/notes.yaml", CONFIG_MAP.format(note="two")), {"web/carts"}),
    "the Namespace web": (lambda repo: repo.write("clusters/namespaces.yaml", NAMESPACE.format(note="two")), {"web/carts"}),
    "a cluster moved to web": (lambda repo: repo.write("clusters/shop/orders.yaml", mongodb(namespace="web")), {"shop/carts", "shop/orders", "web/carts"}),
    "the settings": (lambda repo: _settings(repo, "2"), {"shop/carts", "shop/orders", "web/carts"}),
}


@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
@pytest.mark.parametrize("what", sorted(TOUCHING))
def test_a_cluster_of_a_namespace_no_change_touched_renders_as_today_s_without_a_key(repo, tmp_path, keyed, what, cached):
    from everest_render.cache.store import Store

    change, keyed_at_revision = TOUCHING[what]
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    repo.write("clusters/web/carts.yaml", mongodb(name="carts", namespace="web"))
    repo.write("clusters/web/notes.yaml", CONFIG_MAP.format(note="one"))
    repo.write("clusters/namespaces.yaml", NAMESPACE.format(note="one"))
    _settings(repo, "1")
    commit(repo)
    change(repo)
    store = Store.open(tmp_path / "cache") if cached else None
    today, earlier = render_with_revision(repo.root, repo.root / "out", "HEAD", jobs=1, cache=store)
    before = earlier()
    todays = today.resolved.clusters
    # Each side rendered alone, without a cache (nothing keyed).
    today_alone = render_repository(read_repository(repo.root, repo.root / "out"))
    revision_alone = render_at_revision(repo.root, "HEAD")
    if cached:
        # On one process, the revision's side is keyed first (while today's would render on
        # the workers), then today's side keys each of its clusters, for the cache.
        assert sorted(keyed[-len(todays) :]) == sorted(str(c.ref) for c in todays)
        assert sorted(keyed[: -len(todays)]) == sorted(keyed_at_revision)
    else:
        # Without a cache, each cluster keyed is compared with today's at the same place only
        # (the one whose key can be the same), keyed too.
        places = {(c.cluster.document.source.path, c.cluster.document.index): str(c.ref) for c in todays}
        at_revision = revision_alone.resolved.clusters
        partners = {places[(c.cluster.document.source.path, c.cluster.document.index)] for c in at_revision if str(c.ref) in keyed_at_revision}
        assert sorted(keyed) == sorted([*keyed_at_revision, *partners])
    assert (dict(today.plan.files), dict(before.files)) == (dict(today_alone.plan.files), dict(revision_alone.plan.files))
    assert before.diagnostics == ()


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The clusters resolved (each `resolve_cluster`), as ``namespace/name``."""
    import everest_render.resolve.cluster as resolve

    refs: list[str] = []
    resolve_cluster = resolve.resolve_cluster

    def counting(cluster, *args, **kwargs):  # type: ignore[no-untyped-def]
        refs.append(str(cluster.ref))
        return resolve_cluster(cluster, *args, **kwargs)

    monkeypatch.setattr(resolve, "resolve_cluster", counting)
    return refs


IGNORED_RANGES = "  instances:\n    engine: {expose: {type: ClusterIP, sourceRanges: [10.0.0.0/8]}}\n"


@pytest.mark.parametrize("warned", [False, True], ids=["no warning", "a warning in web"])
def test_the_revision_resolves_again_only_what_a_change_touched_or_today_s_side_warned_of(repo, resolved, warned):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    repo.write("clusters/web/carts.yaml", mongodb(name="carts", namespace="web", body=IGNORED_RANGES if warned else "  instances:\n    engine: {}\n"))
    repo.write("clusters/web/notes.yaml", CONFIG_MAP.format(note="one"))
    commit(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    today, before, diagnostics = both_sides(repo)
    # Today's three, then the revision's of shop: web/carts is today's very cluster, unless
    # today's side said something of its file (then it is resolved, and says it, again).
    again = ["web/carts"] if warned else []
    assert sorted(resolved) == sorted(["shop/carts", "shop/orders", "web/carts", "shop/carts", "shop/orders", *again])
    assert (today, before) == alone(repo)
    revision_alone = render_at_revision(repo.root, "HEAD")
    assert diagnostics == tuple(str(d) for d in revision_alone.diagnostics) and bool(diagnostics) == warned


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The repository's own files each parse of its documents read (`parse_documents`), by path."""
    calls: list[list[str]] = []
    parse_documents = pipeline.parse_documents

    def counting(documents, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("builtin"):
            calls.append(sorted({d.source.path for d in documents if d.source.path.startswith("clusters/")}))
        return parse_documents(documents, *args, **kwargs)

    monkeypatch.setattr(pipeline, "parse_documents", counting)
    return calls


def _namespaces_apart(repo: Repo, *, warned: bool = False) -> None:
    """shop (two clusters, storages, and a cluster of shop kept in another folder), web apart."""
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb(name="carts"))
    _storage(repo, "bucket-a")
    repo.write("clusters/elsewhere/inventory.yaml", cluster("percona-postgresql", PG_BACKUPS, name="inventory"))
    repo.write("clusters/web/carts.yaml", mongodb(name="carts", namespace="web", body=IGNORED_RANGES if warned else "  instances:\n    engine: {}\n"))
    repo.write("clusters/web/notes.yaml", CONFIG_MAP.format(note="one"))
    commit(repo)


SHOP = ["clusters/elsewhere/inventory.yaml", "clusters/shop/carts.yaml", "clusters/shop/orders.yaml", "clusters/shop/storages.yaml"]
EVERY = sorted([*SHOP, "clusters/web/carts.yaml", "clusters/web/notes.yaml"])
IN_SHOP = {
    "a cluster": (lambda repo: repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n")), {"orders"}),
    "a BackupStorage": (lambda repo: _storage(repo, "bucket-c"), {"inventory"}),
}


@pytest.mark.parametrize("what", sorted(IN_SHOP))
def test_the_revision_parses_only_the_files_of_the_namespaces_its_changes_touch(repo, parsed, what):
    change, changed = IN_SHOP[what]
    _namespaces_apart(repo)
    change(repo)
    today, before, diagnostics = both_sides(repo)
    # Today's side parses every file; the revision's only shop's, wherever they are (web's
    # output is today's): the file of another folder holding a cluster of shop among them.
    assert parsed == [EVERY, SHOP]
    assert (today, before) == alone(repo)
    assert {path for path in today if today[path] != before.get(path)} == {f"shop/{name}.yaml" for name in changed}
    assert diagnostics == ()


def _part_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import everest_render.commands.revision_part as revision_part

    monkeypatch.setattr(revision_part, "spliced", lambda *args: None)


# Where the part cannot stand for the whole: the revision is resolved and rendered whole.
WHOLE = {
    "today's side warns": lambda repo, monkeypatch: _namespaces_apart(repo, warned=True),
    "an error at the revision": lambda repo, monkeypatch: (
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts").replace("percona-server-mongodb", "no-such-provider")),
        _namespaces_apart(repo),
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts").replace("percona-server-mongodb", "no-such-provider")),
        commit(repo),
        repo.write("clusters/shop/carts.yaml", mongodb(name="carts")),
    ),
    "the part refused once rendered": lambda repo, monkeypatch: (_namespaces_apart(repo), _part_refused(monkeypatch)),
}


@pytest.mark.parametrize("what", sorted(WHOLE))
def test_a_revision_whose_part_cannot_stand_for_it_renders_whole(repo, parsed, monkeypatch, what):
    WHOLE[what](repo, monkeypatch)
    if what != "an error at the revision":
        repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    today, before, diagnostics = both_sides(repo)
    assert parsed[0] == EVERY and parsed[-1] == EVERY
    assert (today, before) == alone(repo)
    assert diagnostics == tuple(str(d) for d in render_at_revision(repo.root, "HEAD").diagnostics)
    assert bool(diagnostics) == (what != "the part refused once rendered")


def test_with_extensions_in_effect_the_revision_parses_only_the_namespaces_its_changes_touch(repo, parsed):
    # An extension's objects, shared ones too, are of their cluster's namespace: the part stands.
    from tests.test_builtin_extensions import SETTINGS

    repo.write("everest-render.yaml", SETTINGS)
    _namespaces_apart(repo)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    today, before, diagnostics = both_sides(repo)
    assert parsed == [EVERY, SHOP]
    assert (today, before) == alone(repo)
    assert {path for path in today if today[path] != before.get(path)} == {"shop/orders.yaml"}
    assert b"kind: NetworkPolicy" in today["web/carts.yaml"] and b"kind: ExternalSecret" in today["shop/_extensions.yaml"]
    assert diagnostics == ()
