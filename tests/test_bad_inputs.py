"""The bad-input corpus: one small repository per case file under tests/bad_inputs/.

Each case is run through the command line, in-process, and must fail closed: exit 3, the
exact error lines on stderr (file:line:col, message, path), nothing on stdout, no traceback,
and out/ exactly as it was before (a previous render's files and index stay). A case file:

    case: what it shows
    command: [validate]               # optional, default [render]; --repo and -q are added
    files: {clusters/a.yaml: "..."}   # text files of the repository
    bytes: {clusters/b.yaml: "6b3a20ff0a"}   # files given as hex, for what text cannot hold
    links: {clusters/l.yaml: nowhere.yaml}   # symbolic links (path: target; for out, a folder
                                             # beside the repository is made for it)
    fifos: [clusters/pipe.yaml]       # named pipes
    devices: [clusters/dev.yaml]      # character devices (the zero device's numbers, endless if read; needs root,
                                      # which CI containers have; skipped otherwise)
    sockets: [clusters/sock.yaml]     # Unix sockets, listening
    unreadable: [clusters/secret]     # files or folders the process may not read
    errors: ["clusters/a.yaml:1:1: ..."]
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from everest_render.commands.cli import main as cli_main

CASES = Path(__file__).parent / "bad_inputs"
CASE_FIELDS = {"case", "command", "files", "bytes", "links", "fifos", "devices", "sockets", "unreadable", "errors"}
# What a previous, good render left in out/: the case must leave it exactly so.
PREVIOUS_OUT = {
    ".everest-render-index": b"# Files under this folder written by everest-render; `render` prunes only these.\nshop/orders.yaml\n",
    "shop/orders.yaml": b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: previous, namespace: shop}\n",
}


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        found[relative] = "<folder>" if path.is_dir() else path.read_bytes()
    return found


def _build(case: dict, root: Path, keep: list[socket.socket]) -> None:
    for name, text in (case.get("files") or {}).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for name, hex_text in (case.get("bytes") or {}).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes.fromhex(hex_text))
    for name, link_target in (case.get("links") or {}).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "out":  # out/ as a link to a folder beside the repository, holding a previous render
            (target.parent / link_target).mkdir(parents=True, exist_ok=True)
        target.symlink_to(link_target)
    for name in case.get("fifos") or []:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(target)
    for name in case.get("devices") or []:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("making a device needs root")
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    for name in case.get("sockets") or []:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        keep.append(server)
        # Bound by a relative name: a socket's path is limited to about 100 bytes.
        here = os.getcwd()
        os.chdir(target.parent)
        try:
            server.bind(target.name)
        finally:
            os.chdir(here)
        server.listen(1)
    for name, content in PREVIOUS_OUT.items():
        target = root / "out" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _deny(monkeypatch: pytest.MonkeyPatch, paths: list[Path]) -> None:
    """Make ``paths`` unreadable. Mode 000 does it for an ordinary user; as root (CI
    containers) permissions are not checked, so opening or listing them fails as the kernel
    would fail it for a user: with EACCES."""
    for path in paths:
        path.chmod(0)
    if os.geteuid() != 0:
        return
    denied = {str(p) for p in paths}
    real_open, real_scandir = os.open, os.scandir

    def guarded_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    def guarded_scandir(path="."):  # type: ignore[no-untyped-def]
        if str(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "scandir", guarded_scandir)


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.yaml"))


def test_the_corpus_holds_at_least_80_cases():
    assert len(case_files()) >= 80


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_bad_input_fails_closed(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict) and not set(case) - CASE_FIELDS and case.get("errors"), f"{path.name}: malformed case"
    root = tmp_path / "repo"
    root.mkdir()
    sockets: list[socket.socket] = []
    request.addfinalizer(lambda: [s.close() for s in sockets])
    _build(case, root, sockets)
    before = _snapshot(root / "out")
    _deny(monkeypatch, [root / name for name in case.get("unreadable") or []])
    command = [*(case.get("command") or ["render"]), "--repo", str(root)]
    if command[0] in ("render", "validate"):
        command.append("--quiet")
    result = CliRunner().invoke(cli_main, command, catch_exceptions=True)
    monkeypatch.undo()
    for name in case.get("unreadable") or []:
        (root / name).chmod(0o755)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    # Messages about folders name them as given: the scratch location is written <repo>, <tmp>.
    stderr = result.stderr.replace(str(root.resolve()), "<repo>").replace(str(root), "<repo>").replace(str(root.parent.resolve()), "<tmp>")
    assert stderr.splitlines() == case["errors"]
    assert result.exit_code == 3
    assert _snapshot(root / "out") == before
