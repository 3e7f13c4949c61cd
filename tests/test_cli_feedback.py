"""What people are told: suggestions for near misses, every problem of a cluster at once,
explain as YAML and beside broken neighbours, shell completion, help that ends with examples
and exit codes."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from everest_render.commands.cli import main
from everest_render.diagnostics import candidates, did_you_mean
from tests.conftest import mongodb
from tests.test_psmdb import STORAGE

CLEAN = {name: None for name in ("GITHUB_ACTIONS", "EVEREST_RENDER_FORMAT", "EVEREST_RENDER_ANNOTATIONS", "EVEREST_RENDER_REPO")}


def run(*args: str):
    return CliRunner(env=CLEAN).invoke(main, list(args), catch_exceptions=False)


# --- suggestions -------------------------------------------------------------------------------


def test_the_one_suggestion_helper_offers_only_a_near_name():
    assert did_you_mean("replica", ["replicas", "resources"]) == '; did you mean "replicas"?'
    assert did_you_mean("shop-prd/orders", ["shop-prod/orders"], quote=False) == "; did you mean shop-prod/orders?"
    assert did_you_mean("zzz", ["replicas", "resources"]) == ""
    assert candidates(["b", "a"], "c") == "a, b"
    assert candidates(["standard", "sharded"], "standrd") == 'sharded, standard; did you mean "standard"?'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  instances:\n    engine: {replica: 3}\n",
            "clusters/shop/orders.yaml:9:14: unknown field 'replica'; did you mean \"replicas\"? (at spec.instances.engine.replica)",
        ),
        (
            "  topology: {type: standrd}\n  instances:\n    engine: {}\n",
            "clusters/shop/orders.yaml:8:20: unknown topology 'standrd'; known: sharded, standard; did you mean \"standard\"?"
            " (at spec.topology.type)",
        ),
        (
            "  instances:\n    engine: {}\n    monitorin: {}\n",
            "clusters/shop/orders.yaml:10:5: topology standard has no component 'monitorin'; known: backupAgent, engine, monitoring;"
            ' did you mean "monitoring"? (at spec.instances.monitorin)',
        ),
        (
            "  components: {versions: {mongo: {version: 8.0.19-7}}}\n  instances:\n    engine: {}\n",
            "clusters/shop/orders.yaml:8:27: unknown component type 'mongo'; known: backup, mongod, pmm; did you mean \"mongod\"?"
            " (at spec.components.versions.mongo)",
        ),
        (
            "  components: {versions: {mongod: {version: 8.0.19-8}}}\n  instances:\n    engine: {}\n",
            "clusters/shop/orders.yaml:8:45: unknown mongod version 8.0.19-8; known: 6.0.18-15, 6.0.19-16, 6.0.21-18, 6.0.25-20, 6.0.27-21, 7.0.15-9, 7.0.18-11, 7.0.24-13, 7.0.28-15, 7.0.30-16, 8.0.12-4, 8.0.17-6, 8.0.19-7, 8.0.4-1, 8.0.8-3;"
            ' did you mean "8.0.19-7"? (at spec.components.versions.mongod.version)',
        ),
        (
            "  instances:\n    engine: {}\n    backupAgent: {}\n  backup:\n    schedules:\n"
            "      - {name: daily, schedule: '@daily', backupStorage: s3-mian}\n",
            "clusters/shop/orders.yaml:13:58: no BackupStorage 's3-mian' in namespace shop (under clusters/); known: other, s3-main;"
            ' did you mean "s3-main"? (at spec.backup.schedules[0].backupStorage)',
        ),
    ],
)
def test_a_near_miss_is_answered_with_the_name_it_probably_meant(repo, body, expected):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    assert repo.errors() == [expected]


def test_an_unknown_provider_is_answered_with_the_near_one(repo):
    repo.write("clusters/shop/orders.yaml", mongodb().replace("percona-server-mongodb", "percona-server-mongo"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:13: unknown provider 'percona-server-mongo'; known: cloudnative-pg, percona-postgresql, percona-server-mongodb,"
        ' percona-xtradb-cluster; did you mean "percona-server-mongodb"? (at spec.provider)'
    ]
    repo.write("clusters/shop/orders.yaml", mongodb().replace("percona-server-mongodb", "cassandra"))
    assert "did you mean" not in repo.errors()[0]


def test_a_shape_error_does_not_hide_the_clusters_other_problems(repo):
    # Before: the wrong type stopped the cluster there, and the unknown provider went unsaid.
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicas: x}\n").replace("mongodb\n", "mongo\n", 1))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:13: unknown provider 'percona-server-mongo'; known: cloudnative-pg, percona-postgresql, percona-server-mongodb,"
        ' percona-xtradb-cluster; did you mean "percona-server-mongodb"? (at spec.provider)',
        'clusters/shop/orders.yaml:9:24: "x" is not of type "integer" (at spec.instances.engine.replicas)',
    ]


def test_a_refused_value_adds_no_second_error_about_its_own_absence(repo):
    # engine: "x" is refused; resolve must not then call the required engine missing.
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: x\n    monitorin: {}\n"))
    assert repo.errors() == [
        'clusters/shop/orders.yaml:9:13: "x" is not of types "null", "object" (at spec.instances.engine)',
        "clusters/shop/orders.yaml:10:5: topology standard has no component 'monitorin'; known: backupAgent, engine, monitoring;"
        ' did you mean "monitoring"? (at spec.instances.monitorin)',
    ]


def test_a_missing_required_field_still_stops_the_cluster_there(repo):
    # Nothing can stand in for a missing value: the cluster is not resolved further.
    body = "  instances:\n    engine: {}\n    backupAgent: {}\n  backup:\n    schedules:\n      - {name: a, backupStorage: s3-main}\n"
    repo.write("clusters/shop/orders.yaml", mongodb(body=body).replace("mongodb\n", "mongo\n", 1))
    assert repo.errors() == ["clusters/shop/orders.yaml:13:9: missing required field 'schedule' (at spec.backup.schedules[0])"]


# --- explain -----------------------------------------------------------------------------------

BACKED = (
    "  instances:\n    engine: {resources: {cpu: '1', memory: 4G}}\n    backupAgent: {}\n  backup:\n    schedules:\n"
    "      - {name: daily, schedule: '@daily', backupStorage: s3-main, retentionCopies: 3}\n"
    "      - {name: weekly, schedule: '@weekly', backupStorage: s3-main, enabled: false}\n"
    "    pitr: {enabled: true, backupStorage: s3-main, uploadIntervalSec: 120}\n"
)


@pytest.fixture
def explained(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    repo.write("clusters/shop/orders.yaml", mongodb(body=BACKED))
    return repo


def test_explain_prints_yaml_values_not_python_reprs(explained):
    result = run("explain", "shop/orders", "--repo", str(explained.root))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "    resources: {cpu: '1', memory: 4G}" in lines
    assert "    config: |" in lines and "      operationProfiling:" in lines
    assert "  spec.paused = false  <- API default" in lines
    assert "  spec.instances.engine.replicas = 3  <- definition percona-server-mongodb topology standard" in lines
    assert not any(word in result.stdout for word in ("True", "False", "None", "{'"))


def test_explain_shows_disabled_schedules_as_such(explained):
    result = run("explain", "shop/orders", "--repo", str(explained.root))
    assert [line for line in result.stdout.splitlines() if line.startswith("  schedule") or line.startswith("  pitr")] == [
        "  schedule daily: @daily -> s3-main (keep 3)",
        "  schedule weekly: @weekly -> s3-main (no retention limit, disabled: checked, not rendered)",
        "  pitr: enabled -> s3-main, upload every 120 s",
    ]
    data = json.loads(run("explain", "shop/orders", "--repo", str(explained.root), "--format", "json").stdout)
    assert [(s["name"], s["enabled"]) for s in data["backup"]["schedules"]] == [("daily", True), ("weekly", False)]


def test_explain_works_beside_broken_clusters_and_counts_their_errors(explained):
    explained.write("clusters/dev/broken.yaml", mongodb(name="broken", namespace="dev", body="  instances: {}\n"))
    explained.write("clusters/dev/worse.yaml", mongodb(name="worse", namespace="dev", body="  instances:\n    engine: {replicas: -1}\n"))
    result = run("explain", "shop/orders", "--repo", str(explained.root))
    assert result.exit_code == 0
    assert result.stdout.startswith("cluster:    shop/orders  (clusters/shop/orders.yaml)\n")
    assert result.stderr == "warning: the rest of the repository has 2 errors in 2 files (everest-render validate lists them)\n"
    data = json.loads(run("explain", "shop/orders", "--repo", str(explained.root), "--format", "json").stdout)
    assert (data["diagnostics"], data["elsewhere"]) == ([], {"errors": 2, "files": 2, "warnings": 0})
    broken = run("explain", "dev/worse", "--repo", str(explained.root))
    assert (broken.exit_code, broken.stdout) == (3, "")
    assert "clusters/dev/worse.yaml:9:24: -1 is less than the minimum of 0 (at spec.instances.engine.replicas)" in broken.stderr


def test_explain_by_name_alone_when_it_is_unique(explained):
    explained.write("clusters/dev/orders.yaml", mongodb(namespace="dev"))
    explained.write("clusters/dev/play.yaml", mongodb(name="play", namespace="dev"))
    result = run("explain", "play", "--repo", str(explained.root))
    assert (result.exit_code, result.stdout.splitlines()[0]) == (0, "cluster:    dev/play  (clusters/dev/play.yaml)")
    ambiguous = run("explain", "orders", "--repo", str(explained.root))
    assert ambiguous.exit_code == 2 and ambiguous.stdout == ""
    assert ambiguous.stderr.splitlines()[-1] == "Error: orders is in several namespaces: dev/orders, shop/orders; name one as NAMESPACE/NAME"


@pytest.mark.parametrize(
    ("target", "suggestion"),
    [("shop/ordres", "; did you mean shop/orders?"), ("shpo/orders", "; did you mean shop/orders?"), ("ordrs", "; did you mean shop/orders?"),
     ("shop/nope", "")],
)
def test_explain_suggests_the_cluster_it_probably_meant(explained, target, suggestion):
    result = run("explain", target, "--repo", str(explained.root))
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"error: no DatabaseCluster {target} in {explained.root}{suggestion}\n"


# --- completion and help -------------------------------------------------------------------------


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "#compdef everest-render"), ("fish", "complete --no-files --command everest-render")])
def test_completion_prints_clicks_script_for_the_shell(shell, marker):
    result = run("completion", shell)
    assert (result.exit_code, result.stderr) == (0, "")
    assert marker in result.stdout and "_EVEREST_RENDER_COMPLETE" in result.stdout


def test_completion_of_another_shell_is_a_usage_error():
    assert run("completion", "powershell").exit_code == 2


def test_the_completion_script_completes_commands():
    env = {"_EVEREST_RENDER_COMPLETE": "bash_complete", "COMP_WORDS": "everest-render ren", "COMP_CWORD": "1"}
    result = CliRunner(env=env).invoke(main, [], prog_name="everest-render")
    assert result.stdout == "plain,render\n"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(main), ids=" ".join)
def test_every_commands_help_ends_with_examples_and_exit_codes(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    lines = [line.strip() for line in result.stdout.rstrip("\n").splitlines()]
    examples, codes = lines.index("Examples:"), lines.index("Exit codes:")
    assert examples < codes
    assert all(line.startswith(("everest-render ", "eval ", "kustomize ", "cd ")) for line in lines[examples + 1 : codes] if line)
    tail = lines[codes + 1 :]
    assert tail and all(line[:3].strip().isdigit() for line in tail), tail
    assert {"0", "2"} <= {line.split()[0] for line in tail} or command in (("krm",), ("argocd", "discover"))
