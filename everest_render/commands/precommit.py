"""The pre-commit hooks of `.pre-commit-hooks.yaml`: keep out/ rendered and in the commit.

`python -m everest_render.commands.precommit render|check [render options]`. Both exit 0 only when
out/ is exactly what a render writes and git tracks every file in it; `render` also writes
out/ when it was stale (and still exits 1, so the commit stops for the user to stage it).

Why not simply `everest-render render` as the hook: pre-commit decides that a hook changed
something from `git diff`, which does not see new files, so a new cluster's rendered file
would be left out of the commit with every hook green. The same holds for `render --check`,
which compares out/ on disk, staged or not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USAGE = "usage: python -m everest_render.commands.precommit render|check [render options: --repo, --out, --kustomization, ...]"
# Variables that would turn the hook's own `render` into another command (or its `--check`
# into a write); the hook decides those itself.
_MODE_VARIABLES = ("EVEREST_RENDER_CHECK", "EVEREST_RENDER_STDOUT")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("render", "check"):
        print(USAGE, file=sys.stderr)
        return 2
    mode, options = args[0], args[1:]
    env = {name: value for name, value in os.environ.items() if name not in _MODE_VARIABLES}
    render = [sys.executable, "-m", "everest_render", "render", *options]
    code = subprocess.run([*render, "--check"], env=env, check=False).returncode
    if code == 1 and mode == "render":
        code = subprocess.run(render, env=env, check=False).returncode
        if code == 0:
            print("everest-render: out/ was stale and has been rendered: review it, `git add` it and commit again", file=sys.stderr)
            return 1
    if code != 0:
        return code
    untracked = _untracked_files(_out_dir(options, env))
    if untracked:
        print(f"everest-render: not added to git: {' '.join(untracked)} (`git add` them and commit again)", file=sys.stderr)
        return 1
    return 0


def _out_dir(options: list[str], env: dict[str, str]) -> Path:
    """The output folder the render options name, as the command line resolves it."""
    values = {"--repo": env.get("EVEREST_RENDER_REPO"), "--out": env.get("EVEREST_RENDER_OUT")}
    for index, option in enumerate(options):
        name, equals, value = option.partition("=")
        if name in values:
            values[name] = value if equals else (options[index + 1] if index + 1 < len(options) else None)
    out = values["--out"]
    return Path(out) if out else Path(values["--repo"] or ".") / "out"


def _untracked_files(out_dir: Path) -> list[str]:
    done = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z", "--", str(out_dir)], capture_output=True, check=False)
    # Outside a git repository there is nothing to stage, so nothing to report.
    return sorted(done.stdout.decode().split("\0")[:-1]) if done.returncode == 0 else []


if __name__ == "__main__":
    sys.exit(main())
