"""Read the repository as it was at a git revision (for `diff --against`)."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from everest_render.diagnostics import Diagnostic
from everest_render.load.files import IGNORE_FILE, INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT
from everest_render.pipeline import RenderResult, read_repository, render_repository

if TYPE_CHECKING:
    from everest_render.cache.store import Store

# What a render reads at the repository's root: only these are unpacked (not out/, not docs).
INPUTS = (*INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE)


class RevisionError(Exception):
    """The revision could not be read (not a git repository, unknown revision, ...)."""


@dataclass(frozen=True)
class EarlierRender:
    """What `diff --against` needs of the revision's render: its files and its diagnostics."""

    files: Mapping[str, bytes]
    diagnostics: tuple[Diagnostic, ...]


def start_render_at_revision(repo: Path, revision: str, cache: Store | None = None) -> Callable[[], EarlierRender]:
    """Begin rendering ``revision`` on a process of its own, while the caller renders today's
    side; the function returned waits for it (raising RevisionError). Without fork, the
    revision is rendered when that function is called."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return lambda: _earlier(repo, revision, cache)
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_render_in_child, args=(sending, repo, revision, cache), daemon=True)
    process.start()
    sending.close()

    def wait() -> EarlierRender:
        files: dict[str, bytes] = {}
        try:
            outcome = receiving.recv()
            while outcome[0] == "files":
                files.update(outcome[1])
                outcome = receiving.recv()
        except EOFError:
            outcome = ("error", f"rendering {revision} stopped before it finished")
        finally:
            receiving.close()
            process.join()
        if outcome[0] == "error":
            raise RevisionError(outcome[1])
        return EarlierRender(files, outcome[1])

    return wait


def _earlier(repo: Path, revision: str, cache: Store | None) -> EarlierRender:
    earlier = render_at_revision(repo, revision, cache=cache)
    return EarlierRender(earlier.plan.files, earlier.diagnostics)


# How many bytes of files go back at a time: the whole out/ of a large fleet in one message
# would be pickled whole, a second copy of it on each side.
BATCH_BYTES = 1 << 20


def _render_in_child(sending: Connection, repo: Path, revision: str, cache: Store | None) -> None:
    # Plain data goes back (files as bytes, frozen diagnostics): no model object is pickled.
    try:
        earlier = _earlier(repo, revision, cache)
        batch: dict[str, bytes] = {}
        size = 0
        for path, data in earlier.files.items():
            batch[path] = data
            size += len(data)
            if size >= BATCH_BYTES:
                sending.send(("files", batch))
                batch, size = {}, 0
        sending.send(("files", batch))
        sending.send(("ok", earlier.diagnostics))
    except RevisionError as error:
        sending.send(("error", str(error)))
    except Exception as error:  # a failure in the child is reported by the parent, never as a traceback
        sending.send(("error", f"cannot render {revision}: {type(error).__name__}: {error}"))
    finally:
        sending.close()


def render_at_revision(repo: Path, revision: str, jobs: int = 1, cache: Store | None = None) -> RenderResult:
    """Render the repository's files as they were at ``revision`` (with today's built-ins), on
    up to ``jobs`` processes, through ``cache``: the clusters that did not change since are
    found there, rendered by the run that rendered today's side."""
    with tempfile.TemporaryDirectory(prefix="everest-render-") as scratch:
        root = Path(scratch)
        _unpack(repo, revision, root)
        return render_repository(read_repository(root, root / "out"), jobs=jobs, cache=cache)


def _unpack(repo: Path, revision: str, scratch: Path) -> None:
    """The inputs of ``repo`` as they were at ``revision``, written under ``scratch`` (the
    archive is let go before the render: it is as large as the inputs)."""
    prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    # From the top level: below it, git filters listings and paths by the working directory.
    top = Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip())
    tree = f"{revision}:{prefix}"
    try:
        present = set(_git(top, "ls-tree", "--name-only", "-z", tree).decode().split("\0"))
        inputs = [name for name in INPUTS if name in present]
        archive = _git(top, "archive", "--format=tar", tree, "--", *inputs) if inputs else b""
    except RevisionError as error:
        if _is_shallow(repo):
            # CI checkouts are shallow by default (actions/checkout fetches one commit, GitLab
            # 20): the revision is usually there upstream, only not fetched. Say how to get it.
            raise RevisionError(
                f"cannot read {revision}: this clone is shallow, so its history may not reach it ({error}); "
                "fetch the history (actions/checkout: `fetch-depth: 0`; GitLab CI: `GIT_DEPTH: 0`; locally: `git fetch --unshallow`)"
            ) from error
        raise
    if archive:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(scratch, filter="data")  # "data": no links or paths outside scratch


def _is_shallow(repo: Path) -> bool:
    try:
        return _git(repo, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except RevisionError:
        return False


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True)
    except FileNotFoundError as error:
        raise RevisionError("git is not installed") from error
    except subprocess.CalledProcessError as error:
        raise RevisionError(error.stderr.decode(errors="replace").strip() or f"git {args[0]} failed") from error
    return done.stdout
