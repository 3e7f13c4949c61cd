"""out/ known by its files' stat (cache/outputs.py): an unchanged out/ file is not read, and
whatever happened to out/ behind the renderer's back is still rewritten and reported exactly
as without the cache.

The property test edits out/ at random (a file removed, truncated, rewritten with its size and
mtime restored, replaced by a link, an owned file added) between renders and edits of the
inputs, and compares `render --check` and `render` with and without the cache.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from everest_render.cache import snapshot
from everest_render.commands.cli import main as cli_main
from everest_render.emit import output
from everest_render.testing import Repo
from tests.test_cache import toy_cluster, tree
from tests.test_templates import GOOD_TEMPLATE, write_toy_provider

LONG = "EVEREST_FUZZ_EXAMPLES" in os.environ


@pytest.fixture
def later(monkeypatch):
    """Runs judged as if long after every file was written: records made now are trusted."""
    monkeypatch.setattr(snapshot, "now", lambda: time.time_ns() + 10 * snapshot.RACY_NS)


def toy(repo: Repo) -> None:
    write_toy_provider(repo, GOOD_TEMPLATE)
    for index, namespace in enumerate(["a", "a", "b"]):
        repo.write(f"clusters/db{index}.yaml", toy_cluster(f"db{index}", namespace=namespace))


def run(repo: Repo, *flags: str, cache: Path | None = None) -> tuple[int, str]:
    env = {"EVEREST_RENDER_CACHE": str(cache)} if cache is not None else {}
    no_cache = [] if cache is not None else ["--no-cache"]
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(repo.root), *no_cache, *flags], env=env)
    return result.exit_code, result.output


def counted_out_reads(monkeypatch) -> list[str]:
    """The out/ files compared by reading them (rather than known by their stat)."""
    names: list[str] = []
    real = output._read_regular

    def read(target, expected=None, *rest):
        names.append(target)
        return real(target, expected, *rest)

    monkeypatch.setattr(output, "_read_regular", read)
    return names


def test_unchanged_out_files_are_known_by_their_stat(repo, tmp_path, monkeypatch, later):
    toy(repo)
    cache = tmp_path / "cache"
    assert run(repo, cache=cache)[0] == 0  # writes out/ (its files too new to be recorded)
    assert run(repo, cache=cache)[0] == 0  # reads and records them
    reads = counted_out_reads(monkeypatch)
    assert run(repo, "--check", cache=cache)[0] == 0
    assert run(repo, cache=cache)[0] == 0
    assert reads == []
    repo.write("clusters/db2.yaml", toy_cluster("db2", 2, namespace="b"))
    code, text = run(repo, "--check", cache=cache)
    assert code == 1 and "stale: " in text and text.count("stale: ") == 1
    assert {Path(p).name for p in reads} == {"db2.yaml"}  # only the file whose bytes changed


def counted_listings(monkeypatch) -> list[str]:
    """The out/ folders listed to look for old writers' temporary files."""
    names: list[str] = []
    real = os.scandir

    def listing(folder):
        names.append(os.fspath(folder))
        return real(folder)

    monkeypatch.setattr(output.os, "scandir", listing)
    return names


def counted_clean_folders(monkeypatch) -> list[str]:
    """The out/ folders asked about one by one (OutputRecord.clean_folder)."""
    from everest_render.cache import outputs

    names: list[str] = []
    real = outputs.OutputRecord.clean_folder

    def clean_folder(self, folder, found):
        names.append(folder)
        return real(self, folder, found)

    monkeypatch.setattr(outputs.OutputRecord, "clean_folder", clean_folder)
    return names


@pytest.mark.parametrize("where", ["a", "", "a/deeper"])
def test_an_old_writers_temporary_file_is_found_in_a_folder_known_clean(repo, tmp_path, monkeypatch, later, where):
    toy(repo)
    cache = tmp_path / "cache"
    out = repo.root / "out"
    if where == "a/deeper":
        (out / where).mkdir(parents=True)
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    listed = counted_listings(monkeypatch)
    one_by_one = counted_clean_folders(monkeypatch)
    assert run(repo, "--check", cache=cache)[0] == 0
    assert listed == [] and one_by_one == []  # every folder known clean by its stat, all at once
    temporary = out / where / ".db0.yaml.tmp-4242"
    temporary.write_text("half")
    code, text = run(repo, "--check", cache=cache)
    assert code == 1 and f"interrupted: {temporary.as_posix()}" in text
    assert run(repo, cache=cache)[0] == 0 and not temporary.exists()
    assert run(repo, "--check", cache=cache)[0] == 0


def counted_out_looks(monkeypatch) -> list[int]:
    """How many out/ files each batch look (OutputRecord.held) is asked about."""
    from everest_render.cache import outputs

    sizes: list[int] = []
    real = outputs.OutputRecord.held

    def held(self, out_dir, paths, digest):
        sizes.append(len(paths))
        return real(self, out_dir, paths, digest)

    monkeypatch.setattr(outputs.OutputRecord, "held", held)
    return sizes


def test_out_is_looked_at_once_per_run_and_a_finished_journal_makes_it_look_again(repo, tmp_path, monkeypatch, later):
    """out/'s lock is taken before the look and held to the write, so the write does not look
    again; unless the write first finishes an interrupted one's journal, which moves files."""
    toy(repo)
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    out = repo.root / "out"
    expected = tree(out)
    looks = counted_out_looks(monkeypatch)
    assert run(repo, cache=cache) == (0, "everest-render: 3 clusters rendered; 0 files written, 3 unchanged, 0 removed\n")
    assert run(repo, "--check", cache=cache)[0] == 0
    assert looks == [3, 3]  # one look per run (the replay's test, reused by the write or the check)
    # A killed render's committed journal: it replaces a/db0.yaml, which every look before the
    # write found holding its planned bytes.
    staging = out / output.STAGING_FOLDER
    staging.mkdir()
    (staging / "0").write_bytes(b"half of another render\n")
    (out / output.JOURNAL_FILE).write_text('{"replace": [["0", "a/db0.yaml"]], "remove": []}')
    looks.clear()
    code, text = run(repo, cache=cache)
    assert (code, text) == (0, "everest-render: 3 clusters rendered; 1 file written, 2 unchanged, 0 removed\n")
    assert tree(out) == expected and len(looks) == 2  # looked at again once the journal moved files


def test_a_render_holding_outs_lock_keeps_another_from_writing_meanwhile(repo, tmp_path, monkeypatch, later):
    """While one run holds out/'s lock from its look to its write, another waits and refuses
    as it always did; and a run whose early lock is not free takes the write's lock as before."""
    import fcntl

    toy(repo)
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    out = repo.root / "out"
    monkeypatch.setattr(output, "LOCK_WAIT_SECONDS", 0.3)
    holder = output.OutputLock(out)
    assert holder.take()
    try:
        code, text = run(repo, cache=cache)
        assert code == 3 and "is being written by another everest-render run" in text
        assert run(repo, "--check", cache=cache)[0] == 0  # a check takes no lock
    finally:
        holder.release()
    descriptor = os.open(out, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.close(descriptor)  # released
    assert run(repo, cache=cache)[0] == 0
    released = output.OutputLock(out)
    assert released.take()  # the run released its lock when it ended
    released.release()


def test_a_replay_whose_changes_are_judged_keeps_outs_lock_to_the_write(repo, tmp_path, monkeypatch, later):
    """After `--check` kept the render of an edit, `render` replays it, judges its changes to
    out/ (the catalogue alone resolved) and writes them under the lock of its one look; a run
    that renders clusters lets the lock go first (a while: another run may write meanwhile)."""
    from everest_render import pipeline

    toy(repo)
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    out = repo.root / "out"
    free_while_rendering: list[bool] = []
    real_render = pipeline.render_repository

    def render_repository(*args, **kwargs):
        other = output.OutputLock(out)
        free_while_rendering.append(other.take())
        other.release()
        return real_render(*args, **kwargs)

    monkeypatch.setattr(pipeline, "render_repository", render_repository)
    looks = counted_out_looks(monkeypatch)
    repo.write("clusters/db2.yaml", toy_cluster("db2", replicas=3, namespace="b"))
    assert run(repo, "--check", cache=cache)[0] == 1
    decoded: list[bytes] = []
    real_decoded = snapshot._Layout._decoded
    monkeypatch.setattr(snapshot._Layout, "_decoded", lambda self: decoded.append(self.layout_id) or real_decoded(self))
    assert run(repo, cache=cache) == (0, "everest-render: 3 clusters rendered; 1 file written, 2 unchanged, 0 removed\n")
    assert looks == [3, 3] and free_while_rendering == [True]  # the check's render; the render's replay, judged
    assert decoded == []  # the entry's own inputs: its parts not decoded to find nothing changed
    repo.write("clusters/db2.yaml", toy_cluster("db2", replicas=2, namespace="b"))
    looks.clear()
    assert run(repo, cache=cache) == (0, "everest-render: 3 clusters rendered; 1 file written, 2 unchanged, 0 removed\n")
    assert looks == [3] and free_while_rendering == [True, True]  # the namespace rendered with the lock let go
    assert run(repo, "--check", cache=cache)[0] == 0


@pytest.mark.parametrize("how", ["same size and mtime", "removed", "a link to other bytes"])
def test_an_out_file_changed_behind_the_cache_is_rewritten_and_reported(repo, tmp_path, later, how):
    toy(repo)
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    target = repo.root / "out/a/db0.yaml"
    before = target.stat()
    original = target.read_bytes()
    if how == "same size and mtime":
        edited = original.replace(b"db0", b"dbX", 1)
        assert edited != original and len(edited) == len(original)
        target.write_bytes(edited)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
        assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    elif how == "removed":
        target.unlink()
    else:
        elsewhere = target.parent / "elsewhere.txt"  # inside out/: a link out of it is refused
        elsewhere.write_bytes(original.replace(b"db0", b"dbY", 1))
        target.unlink()
        target.symlink_to(elsewhere)
    assert run(repo, "--check", cache=cache) == run(repo, "--check")
    code, text = run(repo, "--check", cache=cache)
    assert code == 1 and "a/db0.yaml" in text
    assert run(repo, cache=cache)[0] == 0
    assert target.read_bytes() == original and not target.is_symlink()
    assert run(repo, "--check", cache=cache)[0] == 0


@pytest.mark.parametrize("cached", [True, False])
def test_an_out_file_that_is_a_link_out_of_out_stops_the_write(repo, tmp_path, later, cached):
    toy(repo)
    cache = tmp_path / "cache" if cached else None
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    target = repo.root / "out/a/db0.yaml"
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_bytes(target.read_bytes())  # even holding the very bytes planned
    target.unlink()
    target.symlink_to(elsewhere)
    repo.write("clusters/db1.yaml", toy_cluster("db1", 2, namespace="a"))  # something to write
    before = tree(repo.root / "out")
    code, text = run(repo, cache=cache)
    assert code == 3 and f"refusing to write outside {repo.root / 'out'}: a/db0.yaml (a symbolic link?)" in text
    assert tree(repo.root / "out") == before and target.is_symlink() and elsewhere.read_bytes() == before["a/db0.yaml"]


def test_a_corrupt_or_foreign_out_record_is_never_trusted(repo, tmp_path, later):
    from everest_render.cache.outputs import _decode

    toy(repo)
    cache = tmp_path / "cache"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    for entry in sorted(p for p in cache.rglob("*") if p.is_file()):
        data = entry.read_bytes()
        entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    target = repo.root / "out/a/db0.yaml"
    target.write_bytes(target.read_bytes().replace(b"db0", b"dbX", 1))
    assert run(repo, "--check", cache=cache)[0] == 1
    dumps = __import__("marshal").dumps
    from everest_render.cache.outputs import FORMAT

    record = snapshot.record_of(target.stat(), bytes(32))
    folder = (bytes(48), ("a",))
    assert _decode(dumps((FORMAT, {"a.yaml": record}, {"": folder}))) == ({"a.yaml": record}, {"": folder})
    assert _decode(dumps((FORMAT + 1, {"a.yaml": record}, {}))) == ({}, {})  # another format
    assert _decode(dumps((FORMAT - 1, {"a.yaml": record}))) == ({}, {})  # the format before: no folders
    assert _decode(dumps((FORMAT, {"a.yaml": record, "b.yaml": record[:-1]}, {})))[0] == {}  # not a record: none is trusted
    assert _decode(dumps((FORMAT, {"a.yaml": ((1, 2, 3, 4, 5), b"d")}, {})))[0] == {}  # the format before
    assert _decode(dumps((FORMAT, {}, {"": (bytes(47), ("a",))})))[1] == {}  # not a folder's stat
    assert _decode(dumps((FORMAT, {}, {"": (bytes(48), ("a", 1))})))[1] == {}  # not the names of folders
    assert _decode(dumps((FORMAT, {}, {"": (bytes(48), ["a"])})))[1] == {}  # not a tuple of names
    assert _decode(b"not marshal") == ({}, {})


OUT_EDITS = st.one_of(
    st.tuples(st.just("same size"), st.sampled_from(["a/db0.yaml", "b/db2.yaml"])),
    st.tuples(st.just("remove"), st.sampled_from(["a/db0.yaml", "a/db1.yaml"])),
    st.tuples(st.just("truncate"), st.sampled_from(["a/db1.yaml", "b/db2.yaml"])),
    st.tuples(st.just("link"), st.sampled_from(["a/db0.yaml"])),
    st.tuples(st.just("extra"), st.sampled_from(["a/gone.yaml"])),
    st.tuples(st.just("cluster"), st.sampled_from(["db0", "db2"])),
    st.tuples(st.just("render"), st.just("")),
    st.tuples(st.just("forget"), st.sampled_from(["odd", "even"])),  # cache entries lost: it is safe to delete
)


def apply_out(repo: Repo, edit: tuple[str, str], scratch: Path, step: int) -> None:
    what, name = edit
    target = repo.root / "out" / name
    if what == "cluster":
        namespace = "b" if name == "db2" else "a"
        repo.write(f"clusters/{name}.yaml", toy_cluster(name, 1 + step % 3, namespace=namespace))
    elif what == "render":
        pass
    elif what == "forget":
        if repo.root.name == "cached":  # the twin has no cache
            found = sorted(p for p in (repo.root.parent / "cache").rglob("*") if p.is_file())
            for number, entry in enumerate(found):
                if number % 2 == (name == "odd"):
                    entry.unlink()
    elif what == "extra":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("stale\n")
        index = repo.root / "out" / output.INDEX_FILE
        if index.is_file():
            index.write_text(index.read_text() + f"{name}\n")
    elif not target.is_file():
        return
    elif what == "same size":
        before = target.stat()
        data = target.read_bytes()
        # Still YAML (the guardrails parse what out/ holds), the same size, another name.
        target.write_bytes(data.replace(b"name: d", b"name: x", 1) if b"name: d" in data else data.replace(b"name: x", b"name: d", 1))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif what == "remove":
        target.unlink()
    elif what == "truncate":
        target.write_bytes(target.read_bytes()[:10])
    elif what == "link":
        elsewhere = target.parent / f"link-{step}.txt"  # inside out/: a link out of it is refused
        elsewhere.write_bytes(target.read_bytes() + b"# more\n")
        target.unlink()
        target.symlink_to(elsewhere)


@settings(
    max_examples=int(os.environ.get("EVEREST_FUZZ_EXAMPLES", "3")),
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.lists(OUT_EDITS, min_size=1, max_size=2), min_size=1, max_size=4))
def test_check_and_render_with_the_out_record_are_as_without_it(tmp_path_factory, later, edits):
    root = tmp_path_factory.mktemp("repo")
    scratch = tmp_path_factory.mktemp("scratch")
    repo, twin = Repo(root / "cached"), Repo(root / "uncached")
    cache = root / "cache"
    for each in (repo, twin):
        toy(each)
        assert run(each, cache=cache if each is repo else None)[0] == 0
    assert run(repo, cache=cache)[0] == 0  # out/ recorded
    for number, step in enumerate(edits):
        for edit in step:
            for each in (repo, twin):
                apply_out(each, edit, scratch, number)
        cached, uncached = run(repo, "--check", cache=cache), run(twin, "--check")
        assert cached[0] == uncached[0] and cached[1].replace(str(repo.root), "R") == uncached[1].replace(str(twin.root), "R"), step
        cached, uncached = run(repo, cache=cache), run(twin)
        assert cached[0] == uncached[0] and tree(repo.root / "out") == tree(twin.root / "out"), step
        assert run(repo, "--check", cache=cache)[0] == 0


def test_a_render_looks_at_each_out_folder_once(repo, tmp_path, monkeypatch, later):
    """Its link check and its look for old temporaries share one lstat per folder (under the
    lock): a fleet's out/ has thousands of folders."""
    toy(repo)
    cache = tmp_path / "cache"
    out = repo.root / "out"
    for _ in range(2):
        assert run(repo, cache=cache)[0] == 0
    looked: list[str] = []
    real = os.lstat

    def lstat(path, *args, **kwargs):
        looked.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert run(repo, cache=cache)[0] == 0
    folders = [path for path in looked if path in (str(out / "a"), str(out / "b"))]
    assert sorted(folders) == [str(out / "a"), str(out / "b")]
