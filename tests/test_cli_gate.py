"""The command line as a CI gate: contradicting options refused, variables scoped to the
commands they fit, the summary line, GitHub Actions annotations, JSON errors on stdout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from everest_render.commands.cli import main
from everest_render.commands.report import annotation, escape_data, escape_property
from tests.conftest import mongodb

# A warning that leaves the cluster valid.
WARNED = "  instances:\n    engine:\n      expose: {type: ClusterIP, sourceRanges: [10.0.0.0/8]}\n"
WARNING = (
    "clusters/shop/orders.yaml:10:47: warning: sourceRanges only apply to type LoadBalancer; ignored for ClusterIP"
    " (at spec.instances.engine.expose.sourceRanges)"
)
BROKEN = "  instances:\n    engine: {replicas: -1}\n"
ERROR = "clusters/shop/orders.yaml:9:24: -1 is less than the minimum of 0 (at spec.instances.engine.replicas)"
# Variables a CI job may have set for some other command; every test starts without them.
CLEAN = {
    name: None
    for name in (
        "GITHUB_ACTIONS", "GITHUB_WORKSPACE", "EVEREST_RENDER_FORMAT", "EVEREST_RENDER_STDOUT", "EVEREST_RENDER_CHECK",
        "EVEREST_RENDER_ONLY", "EVEREST_RENDER_QUIET", "EVEREST_RENDER_ANNOTATIONS", "EVEREST_RENDER_REPO",
    )
}


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env={**CLEAN, **(env or {})}).invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def fleet(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    return repo


def usage_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr.splitlines()[-1]


# --- contradicting options -----------------------------------------------------------------

CHECK_STDOUT = "exclude each other: --check compares out/ with the render, --stdout prints the render instead"


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--check", "--stdout"], {}, "--check and --stdout"),
        (["--check"], {"EVEREST_RENDER_STDOUT": "1"}, "--check and --stdout (from EVEREST_RENDER_STDOUT)"),
        (["--stdout"], {"EVEREST_RENDER_CHECK": "true"}, "--check (from EVEREST_RENDER_CHECK) and --stdout"),
        ([], {"EVEREST_RENDER_CHECK": "1", "EVEREST_RENDER_STDOUT": "1"},
         "--check (from EVEREST_RENDER_CHECK) and --stdout (from EVEREST_RENDER_STDOUT)"),
    ],
)
def test_check_and_stdout_together_are_a_usage_error_wherever_they_come_from(fleet, args, env, named):
    # A gate written `render --check --stdout` used to print the stream and pass on a stale out/.
    run("render", "--repo", str(fleet.root))
    fleet.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    result = run("render", "--repo", str(fleet.root), *args, env=env)
    assert usage_error(result) == f"Error: {named} {CHECK_STDOUT}"


def test_a_false_variable_contradicts_nothing(fleet):
    result = run("render", "--repo", str(fleet.root), "--check", env={"EVEREST_RENDER_STDOUT": "0"})
    assert result.exit_code == 1  # out/ is missing: the check ran


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--against", "HEAD", "--live"], {}, "--against and --live"),
        (["--against", "HEAD"], {"EVEREST_RENDER_LIVE": "1"}, "--against and --live (from EVEREST_RENDER_LIVE)"),
        (["--live"], {"EVEREST_RENDER_AGAINST": "main"}, "--against (from EVEREST_RENDER_AGAINST) and --live"),
    ],
)
def test_against_and_live_together_are_a_usage_error(fleet, args, env, named):
    result = run("diff", "--repo", str(fleet.root), *args, env=env)
    assert usage_error(result) == f"Error: {named} exclude each other: --against compares with a git revision, --live with the cluster"


@pytest.mark.parametrize(("args", "env", "named"), [(["--only", "shop"], {}, "--only"), ([], {"EVEREST_RENDER_ONLY": "shop"}, "--only (from EVEREST_RENDER_ONLY)")])
def test_only_without_stdout_is_refused_naming_where_it_came_from(fleet, args, env, named):
    for mode in ([], ["--check"]):
        result = run("render", "--repo", str(fleet.root), *mode, *args, env=env)
        assert usage_error(result) == f"Error: {named} selects what --stdout prints; out/ always holds every cluster"


@pytest.mark.parametrize("command", [["render"], ["render", "--check"], ["validate"], ["diff"], ["explain", "shop/orders"], ["providers", "list"], ["schemas"]])
def test_a_repo_that_does_not_exist_is_a_usage_error(tmp_path, command):
    missing = tmp_path / "nope"
    message = f"Error: Invalid value for '--repo' (env var: 'EVEREST_RENDER_REPO'): {missing} does not exist"
    assert usage_error(run(*command, "--repo", str(missing))) == message
    assert usage_error(run(*command, env={"EVEREST_RENDER_REPO": str(missing)})) == message
    (tmp_path / "file").write_text("")
    assert usage_error(run(*command, "--repo", str(tmp_path / "file"))).endswith(f"Directory '{tmp_path / 'file'}' is a file.")
    assert not missing.exists()


# --- variables scoped to the commands they fit -----------------------------------------------


@pytest.mark.parametrize("command", [["validate"], ["explain", "shop/orders"], ["providers", "list"]])
def test_diffs_markdown_format_variable_does_not_break_other_commands(fleet, command):
    result = run(*command, "--repo", str(fleet.root), env={"EVEREST_RENDER_FORMAT": "markdown"})
    assert result.exit_code == 0, result.output
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout or "not json")  # text, their default


def test_the_shared_format_variable_applies_where_its_value_fits(fleet):
    run("render", "--repo", str(fleet.root))
    assert run("diff", "--repo", str(fleet.root), env={"EVEREST_RENDER_FORMAT": "markdown"}).stdout == "No changes.\n"
    validated = run("validate", "--repo", str(fleet.root), env={"EVEREST_RENDER_FORMAT": "json"})
    assert json.loads(validated.stdout)["valid"] is True


def test_a_commands_own_format_variable_wins_and_is_strict(fleet):
    both = {"EVEREST_RENDER_FORMAT": "json", "EVEREST_RENDER_VALIDATE_FORMAT": "text"}
    assert run("validate", "--repo", str(fleet.root), env=both).stdout == ""
    wrong = run("validate", "--repo", str(fleet.root), env={"EVEREST_RENDER_VALIDATE_FORMAT": "markdown"})
    assert usage_error(wrong) == (
        "Error: Invalid value for '--format' (env var: 'EVEREST_RENDER_VALIDATE_FORMAT'): 'markdown' is not one of 'text', 'json'."
    )
    assert usage_error(run("validate", "--repo", str(fleet.root), "--format", "markdown")).startswith("Error: Invalid value for '--format'")


def test_the_kustomization_variable_set_for_render_leaves_the_stream_alone(fleet):
    result = run("render", "--repo", str(fleet.root), "--stdout", env={"EVEREST_RENDER_KUSTOMIZATION": "1"})
    assert result.exit_code == 0
    assert "kind: Kustomization" not in result.stdout


# --- the summary line ----------------------------------------------------------------------


def test_render_ends_with_what_it_did_to_out(fleet):
    fleet.write("clusters/shop/more.yaml", mongodb(name="more"))
    first = run("render", "--repo", str(fleet.root))
    assert (first.exit_code, first.stdout) == (0, "")
    assert first.stderr == "everest-render: 2 clusters rendered; 2 files written, 0 unchanged, 0 removed\n"
    (fleet.root / "clusters/shop/more.yaml").unlink()
    fleet.write("clusters/shop/orders.yaml", mongodb(body=WARNED))
    second = run("render", "--repo", str(fleet.root))
    # The ignored sourceRanges leave the bytes as they were.
    assert second.stderr.splitlines() == [
        WARNING,
        "warning: destructive change: PerconaServerMongoDB shop/more: database removed: its volumes are deleted by finalizer"
        " percona.com/delete-psmdb-pvc",
        "everest-render: 1 cluster rendered, 2 warnings; 0 files written, 1 unchanged, 1 removed",
    ]
    fleet.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    third = run("render", "--repo", str(fleet.root))
    assert third.stderr == "everest-render: 1 cluster rendered; 1 file written, 0 unchanged, 0 removed\n"


def test_check_ends_with_the_verdict_on_out(fleet):
    run("render", "--repo", str(fleet.root))
    current = run("render", "--repo", str(fleet.root), "--check")
    assert (current.exit_code, current.stderr) == (0, "everest-render: 1 cluster checked; 2 files up to date\n")
    fleet.write("clusters/shop/more.yaml", mongodb(name="more"))
    fleet.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    stale = run("render", "--repo", str(fleet.root), "--check")
    out = (fleet.root / "out").as_posix()
    assert stale.exit_code == 1
    assert stale.stderr.splitlines() == [
        f"missing: {out}/shop/more.yaml",
        f"stale: {out}/shop/orders.yaml",
        f"stale: {out}/.everest-render-index",
        "everest-render: 2 clusters checked; 2 files stale, 1 missing, 0 extra: run everest-render render",
    ]


def test_validate_ends_with_the_verdict(fleet):
    assert run("validate", "--repo", str(fleet.root)).stderr == "everest-render: 1 cluster valid; nothing written\n"
    fleet.write("clusters/shop/more.yaml", mongodb(name="more", body=BROKEN.replace("-1}", "-1, storage: {size: 1Gi, class: 1}}")))
    fleet.write("clusters/shop/orders.yaml", mongodb(body=WARNED))
    result = run("validate", "--repo", str(fleet.root))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == "everest-render: 2 errors in 1 file, 1 warning; nothing written"


@pytest.mark.parametrize("command", [["render"], ["render", "--check"], ["validate"]])
def test_quiet_silences_only_the_summary(fleet, command):
    run("render", "--repo", str(fleet.root))
    fleet.write("clusters/shop/orders.yaml", mongodb(body=WARNED))
    assert run(*command, "--repo", str(fleet.root), "--quiet").stderr == WARNING + "\n"
    assert run(*command, "--repo", str(fleet.root), env={"EVEREST_RENDER_QUIET": "1"}).stderr == WARNING + "\n"
    fleet.write("clusters/shop/orders.yaml", mongodb(body=BROKEN))
    assert run(*command, "--repo", str(fleet.root), "-q").stderr == ERROR + "\n"


def test_a_stream_has_no_summary_and_stays_pure(fleet):
    fleet.write("clusters/shop/orders.yaml", mongodb(body=WARNED))
    streamed = run("render", "--repo", str(fleet.root), "--stdout")
    run("render", "--repo", str(fleet.root))
    assert streamed.stderr == WARNING + "\n"
    assert streamed.stdout_bytes == (fleet.root / "out/shop/orders.yaml").read_bytes()


# --- GitHub Actions annotations ------------------------------------------------------------


def test_workflow_command_escaping_follows_githubs_rules():
    assert escape_data("100% of\r\nit: a, b") == "100%25 of%0D%0Ait: a, b"
    assert escape_property("dir:a,b%\n") == "dir%3Aa%2Cb%25%0A"
    assert annotation(True, "x", "a,b.yaml", 1, 2) == "::error file=a%2Cb.yaml,line=1,col=2,title=everest-render::x"
    assert annotation(False, "y") == "::warning title=everest-render::y"


def test_on_github_actions_every_problem_is_also_an_annotation(fleet):
    fleet.write("clusters/shop/more.yaml", mongodb(name="more", body=WARNED))
    fleet.write("clusters/shop/orders.yaml", mongodb(body=BROKEN))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(fleet.root.parent)}
    result = run("render", "--repo", str(fleet.root), env=env)
    where = fleet.root.name + "/clusters/shop"
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.splitlines() == [
        WARNING.replace("orders", "more"),
        f"::warning file={where}/more.yaml,line=10,col=47,title=everest-render::sourceRanges only apply to type LoadBalancer;"
        " ignored for ClusterIP (at spec.instances.engine.expose.sourceRanges)",
        ERROR,
        f"::error file={where}/orders.yaml,line=9,col=24,title=everest-render::-1 is less than the minimum of 0 (at spec.instances.engine.replicas)",
        "everest-render: 1 error in 1 file, 1 warning; nothing written",
    ]


def test_annotations_are_relative_to_the_working_directory_outside_github(fleet, monkeypatch):
    fleet.write("clusters/shop/orders.yaml", mongodb(body=BROKEN))
    monkeypatch.chdir(fleet.root)
    for args, env in ((["--annotations", "github"], {}), ([], {"EVEREST_RENDER_ANNOTATIONS": "github"})):
        lines = run("validate", *args, env=env).stderr.splitlines()
        assert lines[1] == "::error file=clusters/shop/orders.yaml,line=9,col=24,title=everest-render::-1 is less than the minimum of 0 (at spec.instances.engine.replicas)"


def test_annotations_can_be_turned_off_on_github_and_are_off_elsewhere(fleet):
    fleet.write("clusters/shop/orders.yaml", mongodb(body=BROKEN))
    assert "::error" not in run("validate", "--repo", str(fleet.root), "--annotations", "none", env={"GITHUB_ACTIONS": "true"}).stderr
    assert "::error" not in run("validate", "--repo", str(fleet.root), env={"EVEREST_RENDER_ANNOTATIONS": "none", "GITHUB_ACTIONS": "true"}).stderr
    assert "::error" not in run("validate", "--repo", str(fleet.root), env={"GITHUB_ACTIONS": "false"}).stderr


def test_a_stale_file_is_an_annotation_on_that_file(fleet, monkeypatch):
    monkeypatch.chdir(fleet.root)
    run("render")
    fleet.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: 5}\n"))
    lines = run("render", "--check", env={"GITHUB_ACTIONS": "true"}).stderr.splitlines()
    assert lines[:2] == ["stale: out/shop/orders.yaml", "::error file=out/shop/orders.yaml,title=everest-render::stale: out/shop/orders.yaml (run everest-render render)"]


def test_annotations_leave_the_stream_and_the_json_report_alone(fleet):
    fleet.write("clusters/shop/orders.yaml", mongodb(body=WARNED))
    env = {"GITHUB_ACTIONS": "true"}
    streamed = run("render", "--repo", str(fleet.root), "--stdout", env=env)
    assert streamed.stdout.startswith("---\napiVersion: psmdb.percona.com/v1\n") and "::" not in streamed.stdout
    validated = run("validate", "--repo", str(fleet.root), "--format", "json", env=env)
    assert json.loads(validated.stdout)["valid"] is True
    assert validated.stderr.startswith("::warning file=") and len(validated.stderr.splitlines()) == 1


def test_an_unlocated_error_is_an_annotation_without_a_file(fleet, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fleet.root / "out").mkdir()
    (fleet.root / "out/shop").symlink_to(elsewhere)
    lines = run("render", "--repo", str(fleet.root), "--annotations", "github").stderr.splitlines()
    assert lines[1] == f"::error title=everest-render::refusing to write outside {fleet.root / 'out'}%3A shop/orders.yaml (a symbolic link?)".replace("%3A", ":")


# --- errors as JSON --------------------------------------------------------------------------

ERROR_JSON = {
    "file": "clusters/shop/orders.yaml", "line": 9, "column": 24, "severity": "error",
    "message": "-1 is less than the minimum of 0", "path": "spec.instances.engine.replicas",
}


@pytest.mark.parametrize("command", [["validate"], ["explain", "shop/orders"], ["diff"], ["providers", "list"]])
def test_every_json_command_reports_errors_as_json_and_nothing_on_stderr(fleet, command):
    fleet.write("clusters/shop/orders.yaml", mongodb(body=BROKEN))
    if command == ["providers", "list"]:
        fleet.write("providers/broken/provider.yaml", "apiVersion: everest.percona.com/v2alpha1\nkind: Provider\nmetadata: {name: broken}\nspec: {}\n")
    result = run(*command, "--repo", str(fleet.root), "--format", "json")
    assert (result.exit_code, result.stderr) == (3, "")
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert set(report) == {"valid", "clusters", "diagnostics"}
    if command == ["providers", "list"]:
        assert "providers/broken/provider.yaml" in {d["file"] for d in report["diagnostics"]}
    else:
        assert report["diagnostics"] == [ERROR_JSON]


def test_an_error_without_a_position_has_the_same_fields_in_json(fleet):
    result = run("explain", "shop/nope", "--repo", str(fleet.root), "--format", "json")
    assert (result.exit_code, result.stderr) == (3, "")
    assert json.loads(result.stdout)["diagnostics"] == [
        {"file": None, "line": None, "column": None, "severity": "error", "message": f"no DatabaseCluster shop/nope in {fleet.root}", "path": ""}
    ]


def test_a_json_diff_that_cannot_read_its_other_side_says_so_in_json(fleet):
    result = run("diff", "--repo", str(fleet.root), "--against", "HEAD", "--format", "json")
    assert (result.exit_code, result.stderr) == (3, "")
    (problem,) = json.loads(result.stdout)["diagnostics"]
    assert problem["file"] is None and "not a git repository" in problem["message"]
