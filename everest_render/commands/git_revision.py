"""Read the repository as it was at a git revision (for `diff --against`)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from everest_render.load.files import IGNORE_FILE, INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT
from everest_render.pipeline import RenderResult, read_repository, render_repository

if TYPE_CHECKING:
    from everest_render.cache.store import Store

# What a render reads at the repository's root: only these are unpacked (not out/, not docs).
INPUTS = (*INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE)


class RevisionError(Exception):
    """The revision could not be read (not a git repository, unknown revision, ...)."""


def render_at_revision(repo: Path, revision: str, jobs: int = 1, cache: Store | None = None) -> RenderResult:
    """Render the repository's files as they were at ``revision`` (with today's built-ins), on
    up to ``jobs`` processes, through ``cache``: the clusters that did not change since are
    found there, rendered by the run that rendered today's side."""
    prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    tree = f"{revision}:{prefix}" if prefix else f"{revision}:"
    try:
        present = set(_git(repo, "ls-tree", "--name-only", "-z", tree).decode().split("\0"))
        inputs = [name for name in INPUTS if name in present]
        archive = _git(repo, "archive", "--format=tar", tree, "--", *inputs) if inputs else b""
    except RevisionError as error:
        if _is_shallow(repo):
            # CI checkouts are shallow by default (actions/checkout fetches one commit, GitLab
            # 20): the revision is usually there upstream, only not fetched. Say how to get it.
            raise RevisionError(
                f"cannot read {revision}: this clone is shallow, so its history may not reach it ({error}); "
                "fetch the history (actions/checkout: `fetch-depth: 0`; GitLab CI: `GIT_DEPTH: 0`; locally: `git fetch --unshallow`)"
            ) from error
        raise
    with tempfile.TemporaryDirectory(prefix="everest-render-") as scratch:
        if archive:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(scratch, filter="data")  # "data": no links or paths outside scratch
        root = Path(scratch)
        return render_repository(read_repository(root, root / "out"), jobs=jobs, cache=cache)


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
