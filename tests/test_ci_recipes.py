"""The CI recipes users copy: the pre-commit hooks, the GitHub workflows, the GitLab job.

Everything runs offline: the schemas are the ones check-jsonschema vendors, and pre-commit
runs the hooks as `language: system` from this environment instead of building one. Every
subprocess gets proxies that lead nowhere, so a tool that tried the network would fail here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from everest_render.load.files import IGNORE_FILE, INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT
from tests.conftest import PROJECT_ROOT, mongodb

BIN = Path(sys.executable).parent
MANIFEST = PROJECT_ROOT / ".pre-commit-hooks.yaml"
GITHUB_WORKFLOWS = sorted((PROJECT_ROOT / "examples/ci/github").glob("*.yml"))
GITLAB_CI = PROJECT_ROOT / "examples/ci/gitlab-ci.yml"
NOWHERE = "http://127.0.0.1:9"


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVEREST_RENDER_") and k != "GITHUB_ACTIONS"}
    return {**env, "HTTP_PROXY": NOWHERE, "HTTPS_PROXY": NOWHERE, "http_proxy": NOWHERE, "https_proxy": NOWHERE, **extra}


def tool(*args: str | Path, cwd: Path = PROJECT_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or offline_env(), capture_output=True, text=True, check=False)


# --- the files users copy validate against the runners' published schemas ---------------


def test_the_shipped_workflows_are_the_ones_docs_ci_shows():
    docs = (PROJECT_ROOT / "docs/ci.md").read_text()
    assert [p.name for p in GITHUB_WORKFLOWS] == ["everest-render-comment.yml", "everest-render.yml"]
    for path in [*GITHUB_WORKFLOWS, GITLAB_CI]:
        assert f"```yaml\n{path.read_text()}```\n" in docs, f"docs/ci.md does not show {path.name} as shipped"


@pytest.mark.parametrize(
    ("schema", "files", "extra"),
    [("vendor.github-workflows", GITHUB_WORKFLOWS, []), ("vendor.gitlab-ci", [GITLAB_CI], ["--data-transform", "gitlab-ci"])],
    ids=["github", "gitlab"],
)
def test_the_ci_files_validate_against_the_runners_schemas_and_a_typo_does_not(schema, files, extra, tmp_path):
    check = [BIN / "check-jsonschema", "--builtin-schema", schema, *extra]
    done = tool(*check, *files)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same files with one misspelt key: the schema is strict enough to catch it.
    for path in files:
        broken = tmp_path / path.name
        broken.write_text(re.sub(r"^(\s+)(runs-on|script):", r"\1\2s:", path.read_text(), count=1, flags=re.M))
        assert broken.read_text() != path.read_text()
        assert tool(*check, broken).returncode == 1, f"a misspelt key in {path.name} validated"


def test_the_pr_comment_recipe_updates_one_comment_and_never_runs_the_pull_requests_code():
    check, comment = (yaml.safe_load(p.read_text()) for p in (GITHUB_WORKFLOWS[1], GITHUB_WORKFLOWS[0]))
    # The pull request side: read-only, history for the revision diff, the diff as an artifact.
    assert check["permissions"] == {"contents": "read"}
    steps = check["jobs"]["render"]["steps"]
    assert steps[0] == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}
    assert any("everest-render diff --against" in s.get("run", "") and "--format markdown" in s["run"] for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in steps)
    # The commenting side: triggered by the first by name, no checkout, one marked comment edited.
    assert comment[True] == {"workflow_run": {"workflows": [check["name"]], "types": ["completed"]}}  # YAML 1.1: on -> True
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}
    (step,) = comment["jobs"]["comment"]["steps"]
    assert "uses" not in step
    assert "--method PATCH" in step["run"] and "select(.user.login" in step["run"]


# --- the pre-commit hooks ---------------------------------------------------------------------


def test_the_hook_manifest_is_valid_for_pre_commit_and_a_broken_one_is_not(tmp_path):
    done = tool(BIN / "pre-commit", "validate-manifest", MANIFEST)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / ".pre-commit-hooks.yaml"
    broken.write_text(MANIFEST.read_text().replace("  entry:", "  entyr:", 1))
    assert tool(BIN / "pre-commit", "validate-manifest", broken).returncode == 1


def test_the_hooks_run_once_per_commit_on_every_input_of_the_repository():
    hooks = yaml.safe_load(MANIFEST.read_text())
    assert [h["id"] for h in hooks] == ["everest-render", "everest-render-check"]
    for hook in hooks:
        assert hook["pass_filenames"] is False
        files = re.compile(hook["files"])
        for path in [*(f"{folder}/shop/x.yaml" for folder in (*INPUT_FOLDERS, "crds", "out")), IGNORE_FILE, SETTINGS_FILE, SETTINGS_FILE_MISSPELT]:
            assert files.search(path), f"{hook['id']} does not run when {path} changes"
        for path in ("README.md", "docs/clusters/x.yaml", "examples/ci/gitlab-ci.yml", "layout/out/x.yaml", "docs/everest-render.yaml"):
            assert not files.search(path), f"{hook['id']} runs when {path} changes"


class GitRepo:
    """A throw-away repository with the shipped hooks installed as `language: system` ones."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.env = offline_env(PRE_COMMIT_HOME=str(root.parent / "pre-commit-home"), GIT_CONFIG_GLOBAL=os.devnull)
        self.git("init", "-q")
        hooks = []
        for hook in yaml.safe_load(MANIFEST.read_text()):
            program, *args = shlex.split(hook["entry"])
            assert program == "python"  # language: python runs it with the hook's own environment's python
            hooks.append({**hook, "language": "system", "entry": shlex.join([sys.executable, *args])})
        self.write(".pre-commit-config.yaml", yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}))
        self.git("add", ".pre-commit-config.yaml")

    def write(self, path: str, text: str) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text)

    def git(self, *args: str) -> None:
        done = tool("git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args, cwd=self.root, env=self.env)
        assert done.returncode == 0, done.stderr

    def hook(self, hook_id: str) -> tuple[int, str]:
        """`pre-commit run HOOK` on what is staged, as `git commit` runs it."""
        done = tool(BIN / "pre-commit", "run", hook_id, "--color", "never", cwd=self.root, env=self.env)
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "dbs")


def test_the_check_hook_fails_on_a_stale_out_and_passes_once_rendered_and_staged(git_repo):
    git_repo.write("clusters/shop/orders.yaml", mongodb())
    git_repo.git("add", "clusters")
    code, output = git_repo.hook("everest-render-check")
    assert code == 1 and "Failed" in output and "shop/orders.yaml" in output
    assert not (git_repo.root / "out").exists()  # the check writes nothing

    assert tool(BIN / "everest-render", "render", cwd=git_repo.root, env=git_repo.env).returncode == 0
    code, output = git_repo.hook("everest-render-check")
    assert code == 1 and "not added to git: out/.everest-render-index out/shop/orders.yaml " in output  # on disk is not in the commit

    git_repo.git("add", "out")
    code, output = git_repo.hook("everest-render-check")
    assert code == 0 and "Passed" in output, output


def test_the_render_hook_renders_stops_the_commit_and_passes_once_staged(git_repo):
    git_repo.write("clusters/shop/orders.yaml", mongodb())
    git_repo.git("add", "clusters")
    code, output = git_repo.hook("everest-render")
    assert code == 1 and "out/ was stale and has been rendered" in output
    assert (git_repo.root / "out/shop/orders.yaml").is_file()
    # Rendered, but a new file git does not see: pre-commit alone would call this a pass.
    code, output = git_repo.hook("everest-render")
    assert code == 1 and "not added to git: out/.everest-render-index out/shop/orders.yaml " in output

    git_repo.git("add", "out")
    assert git_repo.hook("everest-render")[0] == 0
    git_repo.git("commit", "-qm", "orders", "--no-verify")

    # A change to a tracked rendered file: rendered again, the commit stopped again.
    git_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    git_repo.git("add", "clusters")
    code, output = git_repo.hook("everest-render")
    assert code == 1 and "files were modified by this hook" in output
    assert "size: 5" in (git_repo.root / "out/shop/orders.yaml").read_text()


def test_the_hooks_skip_commits_that_touch_no_input_and_report_invalid_input(git_repo):
    git_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: lots}\n"))
    git_repo.write("README.md", "# dbs\n")
    git_repo.git("add", "README.md")
    for hook_id in ("everest-render", "everest-render-check"):
        code, output = git_repo.hook(hook_id)
        assert code == 0 and "Skipped" in output
    git_repo.write(IGNORE_FILE, "scratch/\n")
    git_repo.git("add", IGNORE_FILE)
    for hook_id in ("everest-render", "everest-render-check"):
        code, output = git_repo.hook(hook_id)
        assert code == 1 and "- exit code: 3" in output and "clusters/shop/orders.yaml:" in output and "Traceback" not in output
    assert not (git_repo.root / "out").exists()


def test_the_hooks_follow_the_render_options_they_are_given(git_repo):
    # A repository whose GitOps folder is a subfolder: `args: [--repo, dbs]` in the user's config.
    git_repo.write("sub/clusters/shop/orders.yaml", mongodb())
    assert tool(BIN / "everest-render", "render", "--repo", "sub", cwd=git_repo.root, env=git_repo.env).returncode == 0
    git_repo.git("add", "sub/clusters")
    hook = [sys.executable, "-m", "everest_render.commands.precommit", "check"]
    for options in (["--repo", "sub"], ["--repo=sub"], ["--out", "sub/out", "--repo", "sub"]):
        done = tool(*hook, *options, cwd=git_repo.root, env=git_repo.env)
        assert (done.returncode, done.stderr) == (
            1,
            "everest-render: 1 cluster checked; 2 files up to date\n"  # render --check's summary line
            "everest-render: not added to git: sub/out/.everest-render-index sub/out/shop/orders.yaml (`git add` them and commit again)\n",
        )
    git_repo.git("add", "sub/out")
    assert tool(*hook, "--repo", "sub", cwd=git_repo.root, env=git_repo.env).returncode == 0
    assert tool(sys.executable, "-m", "everest_render.commands.precommit", cwd=git_repo.root, env=git_repo.env).returncode == 2
