"""out/ stays consistent whatever happens to a render: killed at any moment, run twice at
once, or out of disk. After a kill, `render --check` never calls a half-written out/ clean,
and the next render restores exactly what it should hold, leaving nothing behind."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from everest_render.commands.cli import main as cli_main
from everest_render.emit import output
from everest_render.emit.output import INDEX_FILE, JOURNAL_FILE, OutputError, OutputPlan, differences, write_output
from tests.conftest import mongodb


def _plan(variant: int, count: int = 30) -> OutputPlan:
    """Plans that share some files, change others and drop some, so every write has all three;
    and each has a folder of its own (out/ lacks it: staged whole and renamed into place), the
    last plan's emptied. Thirty files are enough for most kills to land inside a write (16-19
    of 24 on a loaded machine) at a third of the cost of 160."""
    files = {
        f"ns{i % 7 if i % 7 < 6 else f'6-{variant}/sub{i % 2}'}/c{i:03d}.yaml": f"---\n# variant {variant if i % 3 else 0}\n{'x' * 3000}\n".encode()
        for i in range(count)
        if (i + variant) % 5
    }
    return OutputPlan(dict(sorted(files.items())))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _expected(plan: OutputPlan) -> dict[str, bytes]:
    return {**plan.files, INDEX_FILE: output._index_text(plan).encode()}


def test_a_render_killed_at_any_moment_is_finished_or_undone_by_the_next(tmp_path):
    out = tmp_path / "out"
    plans = [_plan(v) for v in range(3)]
    write_output(plans[0], out)
    started = time.monotonic()
    write_output(plans[1], out)
    write_output(plans[0], out)
    duration = (time.monotonic() - started) / 2
    rng = random.Random(20240611)
    current, seen = plans[0], {"interrupted": 0, "before": 0, "after": 0}
    # At least 24 kills, half SIGKILL, half SIGTERM; more (bounded) until at least 3 landed
    # inside a write, since a loaded machine can shift when the writes happen.
    attempt = 0
    while attempt < 24 or (seen["interrupted"] < 3 and attempt < 80):
        target = plans[1 + attempt % 2] if current is plans[0] else plans[0]
        pid = os.fork()
        if pid == 0:  # the render being killed
            try:
                write_output(target, out)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, duration * 1.3))
        os.kill(pid, signal.SIGKILL if attempt % 2 else signal.SIGTERM)
        os.waitpid(pid, 0)
        tree = _tree(out)
        # --check may say "clean" only when out/ is exactly one render's output.
        for plan in (current, target):
            if not differences(plan, out):
                assert tree == _expected(plan)
        if tree == _expected(current):
            seen["before"] += 1
        elif tree == _expected(target):
            seen["after"] += 1
        else:
            seen["interrupted"] += 1
            assert differences(target, out) and differences(current, out)
        write_output(target, out)  # the next render
        assert _tree(out) == _expected(target)
        assert not differences(target, out)
        current = target
        attempt += 1
    assert sum(seen.values()) == attempt
    # The kills must land inside writes, or this test would not test the journal.
    assert seen["interrupted"] >= 3, seen


def test_check_reports_an_interrupted_write(tmp_path):
    out = tmp_path / "out"
    plan = _plan(1)
    write_output(plan, out)
    (out / JOURNAL_FILE).write_text('{"replace": [], "remove": []}')
    assert differences(plan, out) == [f"interrupted: {JOURNAL_FILE}"]
    write_output(plan, out)
    assert not (out / JOURNAL_FILE).exists() and not differences(plan, out)


def test_temporary_files_of_older_writers_are_removed(tmp_path):
    out = tmp_path / "out"
    plan = _plan(1)
    write_output(plan, out)
    (out / "ns1/.c001.yaml.tmp-4242").write_text("half")
    assert differences(plan, out) == ["interrupted: ns1/.c001.yaml.tmp-4242"]
    write_output(plan, out)
    assert _tree(out) == _expected(plan)


def test_a_staged_folder_is_put_in_file_by_file_where_a_folder_stands_by_then(tmp_path):
    # A committed journal moves a staged folder to where out/ lacked it; should one stand there
    # when the move is finished (made meanwhile by another program), the staged files join it.
    out = tmp_path / "out"
    write_output(_plan(0), out)
    staging = out / output.STAGING_FOLDER
    (staging / "tree-0/sub").mkdir(parents=True)
    (staging / "tree-0/sub/new.yaml").write_bytes(b"new\n")
    (out / "ns0/sub").mkdir()
    (out / "ns0/sub/kept.yaml").write_bytes(b"kept\n")
    (out / JOURNAL_FILE).write_text('{"replace": [], "move": [["tree-0", "ns0"]], "remove": []}')
    assert output.recover(out)
    assert _tree(out) == {**_expected(_plan(0)), "ns0/sub/new.yaml": b"new\n", "ns0/sub/kept.yaml": b"kept\n"}
    assert not staging.exists() and not (out / JOURNAL_FILE).exists()


def test_a_second_render_waits_for_the_lock_then_refuses_clearly(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_output(_plan(0), out)
    monkeypatch.setattr(output, "LOCK_WAIT_SECONDS", 0.3)
    holder = os.open(out, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(OutputError, match="being written by another everest-render run; waited 0 s, writing nothing"):
            write_output(_plan(1), out)
    finally:
        os.close(holder)
    assert _tree(out) == _expected(_plan(0))
    write_output(_plan(1), out)
    assert _tree(out) == _expected(_plan(1))


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_full_disk_or_a_read_only_folder_leaves_out_as_it_was(tmp_path, monkeypatch, failure):
    out = tmp_path / "out"
    write_output(_plan(0), out)
    before = _tree(out)
    calls = []
    real = output._write_synced

    def failing(target, content):
        calls.append(target)
        if len(calls) == 5:
            raise OSError(failure, os.strerror(failure), str(target))
        real(target, content)

    monkeypatch.setattr(output, "_write_synced", failing)
    with pytest.raises(OutputError, match=f"cannot write .*: {os.strerror(failure)}; out/ is as it was"):
        write_output(_plan(1), out)
    assert _tree(out) == before


def test_the_cli_reports_a_full_disk_with_exit_3_and_changes_nothing(tmp_path, monkeypatch):
    (tmp_path / "clusters/shop").mkdir(parents=True)
    (tmp_path / "clusters/shop/orders.yaml").write_text(mongodb())
    (tmp_path / "out/shop").mkdir(parents=True)
    (tmp_path / "out/shop/orders.yaml").write_text("previous\n")

    def full(target, content):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(output, "_write_synced", full)
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(tmp_path), "--quiet"])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == f"error: cannot write {tmp_path / 'out'}: No space left on device; out/ is as it was\n"
    assert _tree(tmp_path / "out") == {"shop/orders.yaml": b"previous\n"}


def test_an_out_link_leading_out_of_the_repository_is_written_only_when_named(tmp_path):
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "clusters/shop").mkdir(parents=True)
    elsewhere.mkdir()
    (repo / "clusters/shop/orders.yaml").write_text(mongodb())
    (repo / "out").symlink_to(elsewhere)
    refused = CliRunner().invoke(cli_main, ["render", "--repo", str(repo), "--quiet"])
    assert refused.exit_code == 3 and "outside the repository; writing nothing" in refused.stderr
    assert list(elsewhere.iterdir()) == []
    named = CliRunner().invoke(cli_main, ["render", "--repo", str(repo), "--out", str(repo / "out"), "--quiet"])
    assert named.exit_code == 0, named.stderr
    assert (elsewhere / "shop/orders.yaml").is_file()


def test_out_files_are_compared_by_their_bytes_whatever_stands_at_their_path(tmp_path):
    # The comparison opens each file once and skips reading one of another size: a file of the
    # same size but other bytes is still stale, a FIFO or a folder is no file (and never blocks).
    out = tmp_path / "out"
    plan = OutputPlan({"a/same.yaml": b"x: 1\n", "a/other.yaml": b"x: 1\n", "a/size.yaml": b"x: 1\n", "a/fifo.yaml": b"x\n", "a/dir.yaml": b"x\n"})
    write_output(plan, out)
    (out / "a/other.yaml").write_bytes(b"x: 2\n")
    (out / "a/size.yaml").write_bytes(b"x: 10\n")
    (out / "a/fifo.yaml").unlink()
    os.mkfifo(out / "a/fifo.yaml")
    (out / "a/dir.yaml").unlink()
    (out / "a/dir.yaml").mkdir()
    assert sorted(differences(plan, out)) == ["missing: a/dir.yaml", "missing: a/fifo.yaml", "stale: a/other.yaml", "stale: a/size.yaml"]
    (out / "a/dir.yaml").rmdir()
    assert write_output(plan, out).written == 4 and differences(plan, out) == []
    assert output.read_output(plan, out) == dict(plan.files)


def test_names_with_odd_parts_are_each_resolved(tmp_path):
    """The write's check of a fleet's names at once (emit/output.py `_Inside.escaping`) finds
    the same names outside out/ as a check of each name alone."""
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    names = ["a/b.yaml", "../x.yaml", "a//b.yaml", "/abs.yaml", "a/./c.yaml", "a/..", "link/d.yaml", "a/", "."]
    inside = output._Inside(out)
    expected = [name for name in names if not output._Inside(out)(name, file_looked_at=True)]
    assert inside.escaping(names) == expected and "../x.yaml" in expected and "link/d.yaml" in expected
    assert output._Inside(out).escaping(["a/b.yaml", "a/c.yaml", "top.yaml"]) == []


def test_without_the_cache_each_out_file_is_read_once_by_the_guardrails_look_and_the_write(tmp_path, monkeypatch):
    # The guardrails' look reads every planned file under out/'s lock, held to the write: what it
    # found holding its bytes (a regular file itself, no link) the write does not read again;
    # a file changed behind the renderer is still rewritten, a link still compared through it.
    repo = tmp_path / "repo"
    for name in ("orders", "users", "carts"):
        (repo / "clusters/shop").mkdir(parents=True, exist_ok=True)
        (repo / f"clusters/shop/{name}.yaml").write_text(mongodb(name))
    arguments = ["render", "--repo", str(repo), "--no-cache", "--quiet"]
    assert CliRunner().invoke(cli_main, arguments).exit_code == 0
    out = repo / "out/shop"
    planned = {name: (out / f"{name}.yaml").read_bytes() for name in ("orders", "users", "carts")}
    (out / "users.yaml").write_bytes(planned["users"].replace(b"users", b"other"))
    (out / "carts.yaml").rename(out / "carts-real.yaml")
    (out / "carts.yaml").symlink_to("carts-real.yaml")
    reads: list[str] = []
    real = output._read_regular

    def read(target, expected=None, *rest):
        reads.append(Path(target).name)
        return real(target, expected, *rest)

    monkeypatch.setattr(output, "_read_regular", read)
    result = CliRunner().invoke(cli_main, [*arguments[:-1]])
    assert result.exit_code == 0, result.output
    assert "1 file written, 2 unchanged" in result.output
    assert reads.count("orders.yaml") == 1
    assert reads.count("carts.yaml") == 3  # the look's open refuses the link, then read through it; the write's
    assert (out / "users.yaml").read_bytes() == planned["users"] and (out / "carts.yaml").is_symlink()
