"""The walk by stat (cache/tree.py): a run whose folders are unchanged asks only about files,
and whatever a walk would see differently (a file added, removed or renamed, an ignore file
edited in place, a link) is seen. The random edits of tests/test_cache.py go through it too.
"""

from __future__ import annotations

import os
import time

import pytest

from everest_render import incremental
from everest_render.cache import snapshot
from everest_render.cache.store import Store, renderer_identity
from everest_render.cache.tree import FORMAT, OVERLAY_LIMIT, _decode, tree_key
from everest_render.pipeline import read_repository, render_incremental, render_repository
from tests.test_cache import toy_cluster, written
from tests.test_templates import GOOD_TEMPLATE, write_toy_provider


@pytest.fixture
def later(monkeypatch):
    """Runs judged as if long after every file was written: records made now are trusted."""
    monkeypatch.setattr(snapshot, "now", lambda: time.time_ns() + 10 * snapshot.RACY_NS)


@pytest.fixture
def walks(monkeypatch) -> list[str]:
    """Each walk of the repository a render makes (rather than its record's)."""
    found: list[str] = []
    real = incremental.read_repository_files

    def walk(root, out_dir, reader):
        found.append(str(root))
        return real(root, out_dir, reader)

    monkeypatch.setattr(incremental, "read_repository_files", walk)
    return found


def render(repo, store):
    result = render_incremental(repo.root, repo.root / "out", cache=store)
    assert written(result) == written(render_repository(read_repository(repo.root)))
    return result


def toy(repo) -> None:
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index, namespace in enumerate(["a", "a", "b"]):
        repo.write(f"clusters/{namespace}/db{index}.yaml", toy_cluster(f"db{index}", namespace=namespace))


def test_unchanged_folders_are_not_walked_and_changed_files_are_still_seen(repo, tmp_path, later, walks):
    toy(repo)
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    assert len(walks) == 1
    assert render(repo, store).replayed and len(walks) == 1  # no change: no walk
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))  # in place: the folder is unchanged
    assert b'replicas: "3"' in render(repo, store).plan.files["a/db0.yaml"] and len(walks) == 1
    repo.write("providers/toy/configmap.yaml.j2", GOOD_TEMPLATE + "  team: {{ 'a' | tojson }}\n")
    assert b"team: a" in render(repo, store).plan.files["a/db0.yaml"] and len(walks) == 1


def recorded(repo, tmp_path) -> Store:
    """The toy repository rendered twice into a new cache: its walk recorded, and trusted."""
    toy(repo)
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    render(repo, store)
    return store


def test_a_file_replaced_by_a_rename_is_seen_and_its_folder_listed_not_the_repository_walked(repo, tmp_path, later, walks, monkeypatch):
    store = recorded(repo, tmp_path)
    # As git's checkout and most editors write: a new file renamed over the old (the folder's
    # stat changes), and a hidden file beside it, which the walk skips.
    fresh = repo.root / "clusters/a/.db0.yaml.swp"
    fresh.write_text(toy_cluster("db0", 3, namespace="a"))
    os.replace(fresh, repo.root / "clusters/a/db0.yaml")
    (repo.root / "clusters/a/.db0.yaml.swp").write_text("an editor's")
    listed: list[str] = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(os.fspath(path)) or real(path))

    def listing_render() -> list[str]:
        """The folders the cached render lists (not those of the uncached one it is checked by)."""
        listed.clear()
        result = render_incremental(repo.root, repo.root / "out", cache=store)
        found = [os.path.relpath(path, repo.root) for path in listed]
        assert written(result) == written(render_repository(read_repository(repo.root)))
        assert b'replicas: "3"' in result.plan.files["a/db0.yaml"]
        return found

    assert listing_render() == ["clusters/a"] and len(walks) == 1  # its folder alone
    assert listing_render() == [] and len(walks) == 1  # the folder's new stat recorded: not listed again


@pytest.mark.parametrize("change", ["added", "removed", "renamed", "folder added", "settings added", "not YAML added", "replaced by a folder"])
def test_a_changed_listing_is_walked(repo, tmp_path, later, walks, change):
    store = recorded(repo, tmp_path)
    target = repo.root / "clusters/a/db1.yaml"
    if change == "added":
        repo.write("clusters/a/db9.yaml", toy_cluster("db9", namespace="a"))
    elif change == "removed":
        target.unlink()
    elif change == "renamed":
        target.rename(repo.root / "clusters/a/db1.yml")
    elif change == "folder added":
        repo.write("clusters/a/more/db9.yaml", toy_cluster("db9", namespace="a"))
    elif change == "not YAML added":
        repo.write("clusters/a/notes.txt", "a file the walk skips\n")
    elif change == "replaced by a folder":
        target.unlink()
        repo.write("clusters/a/db1.yaml/db9.yaml", toy_cluster("db9", namespace="a"))
    else:
        repo.write("everest-render.yaml", "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\n")
    before = len(walks)
    result = render(repo, store)
    assert len(walks) == before + 1 and (not result.replayed or change == "not YAML added")  # a file it skips: the same render
    render(repo, store)
    assert len(walks) == before + 1  # recorded again: the next run walks no more


def test_an_ignore_file_edited_in_place_is_seen(repo, tmp_path, later, walks):
    toy(repo)
    repo.write(".everestignore", "clusters/b/\n")
    store = Store.open(tmp_path / "cache")
    assert "b/db2.yaml" not in render(repo, store).plan.files
    render(repo, store)
    (repo.root / ".everestignore").write_text("clusters/c/\n")  # the same size, in place
    assert "b/db2.yaml" in render(repo, store).plan.files


def test_a_repository_with_a_link_is_always_walked(repo, tmp_path, later, walks):
    toy(repo)
    (repo.root / "clusters/b/linked.yaml").symlink_to(repo.root / "clusters/a/db1.yaml")
    store = Store.open(tmp_path / "cache")
    for _ in range(3):
        render(repo, store)
    assert len(walks) == 3


@pytest.mark.parametrize("overlay", [True, False])
def test_a_record_older_than_the_manifest_never_lends_an_old_digest(repo, tmp_path, later, walks, monkeypatch, overlay):
    # Two runs saving in turn can leave the walk's record of one run beside the other's
    # manifest: a file known by its stat is taken with the manifest's digest, not the record's.
    from everest_render.cache import tree as tree_module

    if not overlay:
        monkeypatch.setattr(tree_module, "OVERLAY_LIMIT", 0)  # every change keeps the rest anew
    toy(repo)
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    render(repo, store)
    key = tree_key(renderer_identity(), repo.root, repo.root / "out")
    entry = store._path(key)
    old = entry.read_bytes()
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))
    render(repo, store)
    assert entry.read_bytes() != old  # the record holds the new digest now
    entry.write_bytes(old)  # as if the earlier run had saved its record last
    assert b'replicas: "3"' in render(repo, store).plan.files["a/db0.yaml"]
    # Its files' stats are not the files' now: the changed file is read again. With the change
    # in the later record's overlay, the rest (its files and shape) is the one it names; kept
    # anew, it names a rest the later run replaced: no record, so the repository is walked.
    assert len(walks) == (1 if overlay else 2)


def test_a_corrupt_walk_record_is_never_trusted(repo, tmp_path, later, walks):
    toy(repo)
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    key = tree_key(renderer_identity(), repo.root, repo.root / "out")
    entry = store._path(key)
    data = entry.read_bytes()
    entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    render(repo, store)
    assert len(walks) == 2
    assert _decode(b"not marshal", lambda: None) is None
    dumps = __import__("marshal").dumps
    plain = (([("clusters/a.yaml", "t")], {}, False), ([], {}, True), None, [])
    good = {"/r": (True, bytes(48))}
    fingerprint = "0" * 64
    files = {"a": ("/r/a", "t")}

    rest_id = bytes(16)

    def record(watched=good, shape=plain, where=files, inputs=fingerprint, quick=None, version=FORMAT, rest=None, overlay=None):
        rest = dumps((rest_id, shape, where)) if rest is None else rest
        return _decode(dumps((version, watched, rest_id, inputs, quick, overlay or {})), lambda: rest)

    def files_of(found):  # the files and shape, checked whole when first asked for
        return found.where_or_none() if found is not None else None

    decoded = record()
    assert decoded is not None and decoded.inputs == fingerprint and files_of(decoded) == files
    assert decoded.shape.own.sources == [] and decoded.quick is None
    assert _decode(dumps((FORMAT - 1, good, plain, files, fingerprint)), lambda: None) is None  # the format before
    assert _decode(dumps((FORMAT, good, plain, files, fingerprint)), lambda: None) is None  # its layout: the shape not apart
    assert record(version=FORMAT + 1) is None  # another format
    assert record(watched={"/r": (True, (1, 2, 3, 4, 5, 6))}) is None  # the stat of an older format
    assert record(inputs=1) is None  # not a fingerprint
    quick = record(quick=("/r/a", bytes(40), b"\0"))
    assert quick is not None and quick.quick is not None and quick.quick.files == "/r/a"
    assert record(quick=("/r/a", bytes(40))) is None  # the layout before: no file asked about always
    assert record(quick=("/r/a", bytes(39), b"\0")) is None  # not a signature per file
    assert record(quick=("/r/a\0/r/b", bytes(40), b"\0")) is None
    assert record(quick=("/r/a", bytes(40), b"\2")) is None  # not a flag
    assert record(quick=("", b"", b"")) is None  # no file
    assert files_of(record(where={"a": ("/r/a",)})) is None  # not a file's place and token
    assert files_of(record(shape=(([("clusters/a.yaml", 1)], {}, False), *plain[1:]))) is None  # not a text
    assert files_of(record(shape=(*plain[:2], ("everest-render.yaml",), []))) is None  # settings: no text
    bad_assets = (([], {"p": ({"t.yaml": 1}, {})}, False), *plain[1:])
    assert files_of(record(shape=bad_assets)) is None  # a template that is no text
    bad_extension = (*plain[:3], [("e", ("m.yaml", "x"), ({}, {}), "yes")])
    assert files_of(record(shape=bad_extension)) is None  # an extension's flag that is no bool
    assert files_of(record(rest=b"not marshal")) is None
    named = dumps((FORMAT, good, b"\1" * 16, fingerprint, None, {}))  # names another rest
    assert files_of(_decode(named, lambda: dumps((rest_id, plain, files)))) is None
    assert files_of(_decode(named, lambda: None)) is None  # its rest gone
    assert record(rest=dumps((plain, files))) is not None and files_of(record(rest=dumps((plain, files)))) is None  # format 4's
    # Files changed since the rest was kept, in the record's overlay: their tokens put in.
    changed = record(overlay={"a": "t2"})
    assert files_of(changed) == {"a": ("/r/a", "t2")} and changed.shape.builtin.sources[0].text == "t2"
    assert files_of(record(overlay={"b": "x"})) is None  # not a file of the rest
    assert record(overlay={"a": 1}) is None and record(overlay=[("a", "t2")]) is None
    assert record(overlay={str(n): "t" for n in range(OVERLAY_LIMIT + 1)}) is None  # beyond its bound


def test_a_run_after_no_change_reads_no_manifest_and_no_shape(repo, tmp_path, later, walks, monkeypatch):
    """Its files known unchanged by their stats at once: the manifest and the record's files
    and shape are not read, and nothing is written."""
    from everest_render.cache import tree as tree_module

    toy(repo)
    store = Store.open(tmp_path / "cache")
    for _ in range(2):
        render(repo, store)
    decoded: list[bytes] = []
    real = tree_module._decoded_rest
    monkeypatch.setattr(tree_module, "_decoded_rest", lambda rest, digest: decoded.append(rest) or real(rest, digest))
    loaded: list[str] = []
    saved: list[str] = []
    real_load, real_save = Store.load, Store.save
    monkeypatch.setattr(Store, "load", lambda self, key: loaded.append(key) or real_load(self, key))
    monkeypatch.setattr(Store, "save", lambda self, key, payload: saved.append(key) or real_save(self, key, payload))
    render(repo, store)
    place = f"{repo.root}\0{repo.root / 'out'}".encode()
    manifest = __import__("hashlib").sha256(renderer_identity() + b"manifest\0" + place).hexdigest()
    assert decoded == [] and manifest not in loaded and saved == [] and len(walks) == 1
    stats: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: stats.append(os.fspath(path)) or real_stat(path, *a, **k))
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))
    # A change: the files' stats taken once, the changed file read; the record's rest read.
    assert b'replicas: "3"' in render(repo, store).plan.files["a/db0.yaml"]
    assert len(decoded) == 1 and len(walks) == 1
    assert stats.count(str(repo.root / "clusters/b/db2.yaml")) == 1
    # The change is kept in the record's overlay: the rest (files and shape) not written again.
    from everest_render.cache.tree import _rest_key

    key = tree_key(renderer_identity(), repo.root, repo.root / "out")
    assert key in saved and _rest_key(key) not in saved
    saved.clear()
    repo.write("clusters/b/db2.yaml", toy_cluster("db2", 2, namespace="b"))
    assert b'replicas: "2"' in render(repo, store).plan.files["b/db2.yaml"]
    assert b'replicas: "3"' in render(repo, store).plan.files["a/db0.yaml"]  # the overlay's first change still there
    assert _rest_key(key) not in saved and len(walks) == 1


def test_files_asked_about_one_by_one_when_a_stat_is_out_of_the_packed_range(tmp_path, later):
    """The stat reader's batch (snapshot.StatReader.changed) packs stats unmasked; a file whose
    stat does not pack so (a time before 1970), or that is gone, is asked about one by one."""
    files = {}
    for name in ("a.yaml", "old.yaml", "gone.yaml"):
        (tmp_path / name).write_text(name)
    os.utime(tmp_path / "old.yaml", ns=(-(10**9), -(10**9)))
    first = snapshot.StatReader({})
    for name in ("a.yaml", "old.yaml", "gone.yaml"):
        token, _ = first(tmp_path / name, name)
        files[name] = (str(tmp_path / name), token)
    (tmp_path / "gone.yaml").unlink()
    second = snapshot.StatReader(dict(first.seen))
    assert second.changed(files) == ["gone.yaml"]
    assert second.unread == 2 and second.where == {name: files[name][0] for name in ("a.yaml", "old.yaml")}
    (tmp_path / "a.yaml").write_text("other")
    third = snapshot.StatReader(dict(first.seen))
    assert third.changed({name: files[name] for name in ("a.yaml", "old.yaml")}) == ["a.yaml"]
    fourth = snapshot.StatReader(dict(first.seen))  # all in range: the batch itself
    assert fourth.changed({"a.yaml": files["a.yaml"]}) == ["a.yaml"] and fourth.unread == 0


def test_a_record_whose_files_and_shape_are_gone_is_walked_again(repo, tmp_path, later, walks):
    """The cache is safe to delete entry by entry: a record whose rest (its files and shape)
    is gone, asked for them (the run entry gone too, so the render goes on), walks as
    without it."""
    from everest_render.cache.tree import _rest_key

    toy(repo)
    store = Store.open(tmp_path / "cache")
    for _ in range(2):
        render(repo, store)
    key = tree_key(renderer_identity(), repo.root, repo.root / "out")
    run_key = snapshot.Snapshot(store, renderer_identity(), repo.root, repo.root / "out", repr(None)).run_key
    for gone in (_rest_key(key), run_key):
        store._path(gone).unlink()
    result = render(repo, store)
    assert result.plan.files and len(walks) == 2
    render(repo, store)  # the record made anew
    assert len(walks) == 2


def test_a_file_too_new_to_record_is_asked_about_and_the_others_known_by_the_record(repo, tmp_path, walks, monkeypatch):
    """A file changed within the racy window has no record: every run reads it again, and
    knows every other file by the walk record's signatures (no manifest read)."""
    toy(repo)
    store = Store.open(tmp_path / "cache")
    monkeypatch.setattr(snapshot, "now", lambda: time.time_ns() + 10 * snapshot.RACY_NS)
    for _ in range(2):
        render(repo, store)
    monkeypatch.setattr(snapshot, "now", time.time_ns)  # the file edited now is too new to record
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))
    render(repo, store)
    loaded: list[str] = []
    real_load = Store.load
    monkeypatch.setattr(Store, "load", lambda self, key: loaded.append(key) or real_load(self, key))
    read: list[str] = []
    real_read = snapshot.read_text
    monkeypatch.setattr(snapshot, "read_text", lambda path, name: read.append(name) or real_read(path, name))
    saved: list[str] = []
    real_save = Store.save
    monkeypatch.setattr(Store, "save", lambda self, key, payload: saved.append(key) or real_save(self, key, payload))
    assert b'replicas: "3"' in render(repo, store).plan.files["a/db0.yaml"]
    place = f"{repo.root}\0{repo.root / 'out'}".encode()
    manifest = __import__("hashlib").sha256(renderer_identity() + b"manifest\0" + place).hexdigest()
    assert read == ["clusters/a/db0.yaml"] and manifest not in loaded and len(walks) == 1
    # It held what it did: the record saved anew for its stats, its files and shape as kept.
    from everest_render.cache.tree import _rest_key

    key = tree_key(renderer_identity(), repo.root, repo.root / "out")
    assert key in saved and _rest_key(key) not in saved


def test_the_record_after_a_change_holds_what_the_readers_records_say(repo, tmp_path, monkeypatch, walks):
    """The signatures a change's record keeps, made from the record's own and the few files
    asked about (no Python step per file), are those the stat reader's records give; a file
    too new to record is flagged, to be asked about by the next run."""
    from everest_render.cache import tree as tree_module

    compared: list[tuple[bool, bytes]] = []
    real = tree_module._quick_of

    def quick_of(tree, known):
        found = real(tree, known)
        if tree.quick_now is not None and found is not None:
            compared.append((found == tree_module._quick(tree.where, known), found[2]))
        return found

    monkeypatch.setattr(tree_module, "_quick_of", quick_of)
    toy(repo)
    store = Store.open(tmp_path / "cache")
    monkeypatch.setattr(snapshot, "now", lambda: time.time_ns() + 10 * snapshot.RACY_NS)
    for _ in range(2):
        render(repo, store)
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))
    render(repo, store)
    assert compared == [(True, bytes(len(compared[0][1])))]  # every file recorded
    monkeypatch.setattr(snapshot, "now", time.time_ns)  # the file edited now is too new to record
    repo.write("clusters/b/db2.yaml", toy_cluster("db2", 2, namespace="b"))
    render(repo, store)
    assert len(compared) == 2 and compared[1][0] and sum(compared[1][1]) == 1 and len(walks) == 1


def test_a_record_read_after_a_change_is_fingerprinted_as_its_whole_shape(repo, tmp_path, later):
    # A change of a few clusters/ files is fingerprinted from the record's (name, token) pairs
    # and the world's shape, the fleet not made into files: the same fingerprint as the shape's.
    from everest_render.cache.tree import load_tree, quick_read

    toy(repo)
    repo.write("definitions/notes.yaml", "# a file of the world\n")
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    render(repo, store)
    repo.write("clusters/a/db0.yaml", toy_cluster("db0", 3, namespace="a"))  # in place
    reader = snapshot.Snapshot(store, renderer_identity(), repo.root, repo.root / "out", "None").reader
    tree = quick_read(load_tree(store, tree_key(renderer_identity(), repo.root, repo.root / "out")), reader)
    assert tree is not None and tree.since is not None and list(tree.since[1]) == ["clusters/a/db0.yaml"]
    inputs, world = tree.inputs, tree.world_shape  # before the whole shape is made
    shape = tree.shape
    assert inputs == snapshot.fingerprint(shape, snapshot.token_digest) != tree.since[0]
    assert world.own.sources == [s for s in shape.own.sources if not s.path.startswith("clusters/")] != []
    assert world.builtin == shape.builtin and world.settings == shape.settings
