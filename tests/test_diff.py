"""`diff`: what a render would change, against out/, a git revision, or the live cluster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from everest_render.commands.diff import diff_objects, live_view
from everest_render.testing import Repo
from tests.conftest import mongodb
from tests.test_cli import run


@pytest.fixture
def rendered_repo(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    assert run("render", "--repo", str(repo.root)).exit_code == 0
    return repo


def test_no_differences_exit_0_and_print_nothing(rendered_repo):
    result = run("diff", "--repo", str(rendered_repo.root))
    assert (result.exit_code, result.stdout) == (0, "")


def test_a_change_prints_a_unified_diff_and_exits_1(rendered_repo):
    rendered_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    result = run("diff", "--repo", str(rendered_repo.root))
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/out/shop/orders.yaml\n+++ b/out/shop/orders.yaml\n")
    assert "-    size: 3\n+    size: 5\n" in result.stdout


def test_json_names_each_changed_field(rendered_repo):
    rendered_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    (change,) = json.loads(run("diff", "--repo", str(rendered_repo.root), "--format", "json").stdout)["files"]
    assert change["file"] == "shop/orders.yaml"
    (obj,) = change["objects"]
    assert obj["kind"] == "PerconaServerMongoDB"
    assert {"path": "spec.replsets[0].size", "before": 3, "after": 5} in obj["changes"]


def test_a_new_cluster_is_an_added_file(rendered_repo):
    rendered_repo.write("clusters/shop/more.yaml", mongodb(name="more"))
    (change,) = json.loads(run("diff", "--repo", str(rendered_repo.root), "--format", "json").stdout)["files"]
    assert (change["file"], change["status"], change["objects"][0]["status"]) == ("shop/more.yaml", "added", "added")


def test_markdown_summarises_then_shows_the_diff(rendered_repo):
    rendered_repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    text = run("diff", "--repo", str(rendered_repo.root), "--format", "markdown").stdout
    assert "| `shop/orders.yaml` | changed | PerconaServerMongoDB shop/orders (psmdb.percona.com/v1): changed |" in text
    assert "```diff\n--- a/out/shop/orders.yaml" in text


def test_against_a_git_revision_renders_that_revision(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    git = ["git", "-C", str(repo.root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    result = run("diff", "--repo", str(repo.root), "--against", "HEAD")
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/HEAD/shop/orders.yaml\n+++ b/out/shop/orders.yaml\n")


def test_against_a_revision_of_a_repository_in_a_subfolder_of_the_git_repository(repo):
    # Only the revision's inputs are unpacked, found from the top level (git filters by the
    # working directory below it); a change outside the inputs (docs, out/) changes nothing.
    sub = Repo(repo.root / "gitops")
    sub.write("clusters/shop/orders.yaml", mongodb())
    sub.write("docs/notes.md", "one\n")
    git = ["git", "-C", str(repo.root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    sub.write("docs/notes.md", "two\n")
    unchanged = run("diff", "--repo", str(sub.root), "--against", "HEAD")
    assert (unchanged.exit_code, unchanged.stdout) == (0, "")
    sub.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    result = run("diff", "--repo", str(sub.root), "--against", "HEAD")
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/HEAD/shop/orders.yaml\n+++ b/out/shop/orders.yaml\n")


def test_an_unknown_revision_is_an_error(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    subprocess.run(["git", "-C", str(repo.root), "init", "-q"], check=True)
    result = run("diff", "--repo", str(repo.root), "--against", "nope")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ")


def test_a_revision_beyond_a_shallow_clone_names_the_fetch_depth_to_set(repo, tmp_path):
    # What a CI checkout looks like by default: one commit of history, no base branch.
    repo.write("clusters/shop/orders.yaml", mongodb())
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "-C", str(repo.root), "init", "-q"], check=True)
    for message in ("one", "two"):
        repo.write("clusters/shop/orders.yaml", mongodb(body=f"  instances:\n    engine: {{}}\n# {message}\n"))
        subprocess.run([*git, "-C", str(repo.root), "add", "."], check=True)
        subprocess.run([*git, "-C", str(repo.root), "commit", "-qm", message], check=True)
    clone = tmp_path / "clone"
    subprocess.run([*git, "clone", "-q", "--depth", "1", f"file://{repo.root}", str(clone)], check=True)
    for revision in ("HEAD~1", "origin/other"):
        result = run("diff", "--repo", str(clone), "--against", revision)
        assert (result.exit_code, result.stdout) == (3, "")
        assert result.stderr.startswith(f"error: cannot read {revision}: this clone is shallow")
        assert "`fetch-depth: 0`" in result.stderr
    # The full history has no such hint: the revision really is unknown there.
    assert "shallow" not in run("diff", "--repo", str(repo.root), "--against", "nope").stderr


def test_live_without_a_cluster_fails_cleanly(rendered_repo, tmp_path):
    result = run("diff", "--repo", str(rendered_repo.root), "--live", env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot reach the cluster")


def test_live_view_keeps_only_what_the_render_speaks_about():
    rendered = {"spec": {"size": 3, "image": "a", "list": [{"x": 1}]}}
    live = {"spec": {"size": 5, "image": "a", "list": [{"x": 1, "y": 2}], "defaulted": True}, "status": {"ready": 3}}
    assert live_view(rendered, live) == {"spec": {"size": 5, "image": "a", "list": [{"x": 1}]}}


def test_object_diff_reports_missing_and_changed_fields():
    key = ("v1", "ConfigMap", "ns", "x")
    (change,) = diff_objects({key: {"data": {"a": "1"}}}, {key: {"data": {"a": "2", "b": "3"}}})
    assert [(f.path, f.before, f.after) for f in change.fields] == [("data.a", "1", "2"), ("data.b", None, "3")]


def test_against_and_live_together_is_a_usage_error(rendered_repo):
    assert run("diff", "--repo", str(rendered_repo.root), "--against", "HEAD", "--live").exit_code == 2


def test_diff_with_the_kustomization_flag_matches_a_render_that_wrote_it(rendered_repo):
    assert run("render", "--repo", str(rendered_repo.root), "--kustomization").exit_code == 0
    assert run("diff", "--repo", str(rendered_repo.root), "--kustomization").exit_code == 0
    assert run("diff", "--repo", str(rendered_repo.root)).stdout.startswith("--- a/out/kustomization.yaml\n+++ /dev/null\n")


def test_live_compares_the_fields_the_render_sets_with_the_cluster(rendered_repo, tmp_path):
    from tests.fake_kube_api import fake_kube_api

    rendered_repo.write("clusters/shop/more.yaml", mongodb(name="more"))
    (live,) = [o for o in rendered_repo.objects() if o["metadata"]["name"] == "orders"]
    live = {**live, "metadata": {**live["metadata"], "uid": "1234", "resourceVersion": "7"}, "status": {"state": "ready"}}
    live["spec"] = {**live["spec"], "replsets": [{**live["spec"]["replsets"][0], "size": 5}], "defaultedByServer": True}
    kubeconfig = tmp_path / "kubeconfig"
    with fake_kube_api([live], kubeconfig) as requested:
        result = run("diff", "--repo", str(rendered_repo.root), "--live", env={"KUBECONFIG": str(kubeconfig)})
    assert result.exit_code == 1, result.stderr
    assert result.stdout == (
        # 5 replicas in the cluster, 3 in git: a destructive change, listed first.
        "destructive changes (1):\n"
        "  PerconaServerMongoDB shop/orders: engine replicas decreased 5 → 3 (at spec.replsets[0].size)\n"
        "\n"
        "PerconaServerMongoDB shop/more (psmdb.percona.com/v1): added\n"
        "PerconaServerMongoDB shop/orders (psmdb.percona.com/v1): changed\n"
        "  spec.replsets[0].size: 5 -> 3\n"
    )
    # One discovery and one GET per object: a missing object costs one 404, no list-and-wait.
    assert sorted(p for p in requested if p.startswith("/apis/")) == [
        "/apis/psmdb.percona.com/v1",
        "/apis/psmdb.percona.com/v1/namespaces/shop/perconaservermongodbs/more",
        "/apis/psmdb.percona.com/v1/namespaces/shop/perconaservermongodbs/orders",
    ]


def test_live_with_everything_in_place_reports_no_difference(rendered_repo, tmp_path):
    from tests.fake_kube_api import fake_kube_api

    live = [{**o, "status": {"state": "ready"}} for o in rendered_repo.objects()]
    kubeconfig = tmp_path / "kubeconfig"
    with fake_kube_api(live, kubeconfig):
        result = run("diff", "--repo", str(rendered_repo.root), "--live", "--format", "json", env={"KUBECONFIG": str(kubeconfig)})
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "destructive": [],
        "counts": {"added": 0, "changed": 0, "removed": 0, "destructive": 0},
        "explanations": [],
        "files": [],
    }


IMPORTED = (
    "import sys\n"
    "from everest_render.commands.diff import diff_objects\n"
    "changes = diff_objects({('v1', 'A', 'n', 'a'): {'x': [1, {'y': 2}]}}, {('v1', 'A', 'n', 'a'): {'x': [1, {'y': 3}], 'z': None}})\n"
    "print([(f.path, f.before, f.after) for c in changes for f in c.fields], 'deepdiff' in sys.modules,\n"
    "      'pydantic' in sys.modules, sys.modules.get('pydantic', 0) is None)\n"
)


def test_deepdiff_is_imported_without_pydantic_and_reports_the_same(tmp_path):
    # pydantic is hidden only while deepdiff first imports (commands/diff.py), and never left hidden.
    found = subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True, check=True).stdout
    assert found == "[('x[1].y', 2, 3), ('z', None, None)] True False False\n"
    # A deepdiff that cannot do without pydantic is imported again with it.
    fake = tmp_path / "deepdiff"
    fake.mkdir()
    (fake / "__init__.py").write_text("import pydantic\nfrom deepdiff.diff import DeepDiff\n")
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from everest_render.commands.diff import import_deepdiff\n"
        "found = import_deepdiff()\n"
        "print(found.__module__, sys.modules['pydantic'] is not None)\n"
    )
    (fake / "diff.py").write_text("class DeepDiff:\n    pass\n")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found == "deepdiff.diff True\n"
