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
from everest_render.cache.tree import FORMAT, _decode, tree_key
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


@pytest.mark.parametrize("change", ["added", "removed", "renamed", "folder added", "settings added"])
def test_a_changed_listing_is_walked(repo, tmp_path, later, walks, change):
    toy(repo)
    store = Store.open(tmp_path / "cache")
    render(repo, store)
    render(repo, store)
    target = repo.root / "clusters/a/db1.yaml"
    if change == "added":
        repo.write("clusters/a/db9.yaml", toy_cluster("db9", namespace="a"))
    elif change == "removed":
        target.unlink()
    elif change == "renamed":
        target.rename(repo.root / "clusters/a/db1.yml")
    elif change == "folder added":
        repo.write("clusters/a/more/db9.yaml", toy_cluster("db9", namespace="a"))
    else:
        repo.write("everest-render.yaml", "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\n")
    before = len(walks)
    result = render(repo, store)
    assert len(walks) == before + 1 and not result.replayed
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


def test_a_record_older_than_the_manifest_never_lends_an_old_digest(repo, tmp_path, later, walks):
    # Two runs saving in turn can leave the walk's record of one run beside the other's
    # manifest: a file known by its stat is taken with the manifest's digest, not the record's.
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
    assert len(walks) == 1


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
    assert _decode(b"not marshal") is None
    dumps = __import__("marshal").dumps
    plain = (([("clusters/a.yaml", "t")], {}, False), ([], {}, True), None, [])
    good = {"/r": (True, bytes(48))}
    fingerprint = "0" * 64
    decoded = _decode(dumps((FORMAT, good, plain, {"a": ("/r/a", "t")}, fingerprint)))
    assert decoded is not None and decoded.inputs == fingerprint and decoded.shape.own.sources == []
    assert _decode(dumps((FORMAT, good, plain, {"a": ("/r/a", "t")}))) is None  # the format before: no fingerprint
    assert _decode(dumps((FORMAT + 1, good, plain, {}, fingerprint))) is None  # another format
    assert _decode(dumps((FORMAT, {"/r": (True, (1, 2, 3, 4, 5, 6))}, plain, {}, fingerprint))) is None  # the stat of the format before
    assert _decode(dumps((FORMAT, good, plain, {"a": ("/r/a",)}, fingerprint))) is None  # not a file's place and token
    assert _decode(dumps((FORMAT, good, plain, {}, 1))) is None  # not a fingerprint
    # The shape is checked whole when read, though its objects are made only when asked for.
    assert _decode(dumps((FORMAT, good, (([("clusters/a.yaml", 1)], {}, False), *plain[1:]), {}, fingerprint))) is None  # not a text
    assert _decode(dumps((FORMAT, good, (*plain[:2], ("everest-render.yaml",), []), {}, fingerprint))) is None  # settings: no text
    bad_assets = (([], {"p": ({"t.yaml": 1}, {})}, False), *plain[1:])
    assert _decode(dumps((FORMAT, good, bad_assets, {}, fingerprint))) is None  # a template that is no text
    bad_extension = (*plain[:3], [("e", ("m.yaml", "x"), ({}, {}), "yes")])
    assert _decode(dumps((FORMAT, good, bad_extension, {}, fingerprint))) is None  # an extension's flag that is no bool


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
