"""Destructive-change guardrails: what diff lists first, in every format, and what stops
render, render --check and diff with exit 4 (docs/gitops.md, "Destructive changes")."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.test_cli import run

STORAGES = """\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-a, namespace: shop}
spec: {type: s3, bucket: bucket-a, region: eu-west-1, endpointURL: https://s3.example.com, credentialsSecretName: s3-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-b, namespace: shop}
spec: {type: s3, bucket: bucket-b, region: eu-west-1, endpointURL: https://s3.example.com, credentialsSecretName: s3-creds}
"""


def cluster(provider: str, spec: str, name: str = "orders") -> str:
    return (
        f"apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  provider: {provider}\n" + textwrap.indent(textwrap.dedent(spec), "  ")
    )


def rendered(repo, *files: tuple[str, str]):
    repo.write("clusters/shop/storages.yaml", STORAGES)
    for path, text in files:
        repo.write(path, text)
    assert run("render", "--repo", str(repo.root)).exit_code == 0
    return repo


def destructive(repo) -> list[dict]:
    result = run("diff", "--repo", str(repo.root), "--format", "json")
    return json.loads(result.stdout)["destructive"]


def whats(repo) -> list[str]:
    return [f"{d['what']}: {d['message']}" for d in destructive(repo)]


PXC = "instances:\n  engine: {storage: {size: 100Gi, class: fast}, resources: {memory: 8G}}\n  proxy: {}\n"
PSMDB = "instances:\n  engine: {replicas: 3}\n"
PSMDB_SHARDED = "topology: {type: sharded, config: {shards: 3}}\ninstances:\n  engine: {}\n  configServer: {}\n  proxy: {}\n"
PG_BACKUPS = """\
instances: {engine: {}, proxy: {}, backupAgent: {}}
backup:
  schedules:
    - {name: a, schedule: "0 1 * * *", backupStorage: s3-a}
    - {name: b, schedule: "0 2 * * *", backupStorage: s3-b}
"""
PXC_PITR = """\
instances: {engine: {}, proxy: {}, backupAgent: {}}
backup:
  schedules: [{name: a, schedule: "0 1 * * *", backupStorage: s3-a}]
  pitr: {enabled: true, backupStorage: s3-a}
"""


@pytest.mark.parametrize(
    ("provider", "before", "after", "expected"),
    [
        ("percona-xtradb-cluster", PXC, PXC.replace("class: fast", "class: slow"), ["engine storage class: changed fast → slow"]),
        ("percona-xtradb-cluster", PXC, PXC.replace("proxy: {}", "proxy: {type: proxysql}"), [
            "proxy type (HAProxy): turned off",
            "proxy type (ProxySQL): turned on",
        ]),
        ("percona-xtradb-cluster", PXC, PXC + "secretsName: new-users\n", [
            "credentials Secret (secretsName: new credentials): changed everest-secrets-orders → new-users",
        ]),
        ("percona-xtradb-cluster", PXC + "components: {versions: {pxc: {version: 8.4.7-7.1}}}\n",
         PXC + "components: {versions: {pxc: {version: 8.0.44-35.1}}}\n",
         ["engine version: downgraded percona/percona-xtradb-cluster:8.4.7-7.1 → percona/percona-xtradb-cluster:8.0.44-35.1"]),
        ("percona-xtradb-cluster", PXC_PITR, PXC_PITR.replace("  pitr: {enabled: true, backupStorage: s3-a}\n", ""), ["PITR: turned off"]),
        ("percona-xtradb-cluster", PXC_PITR, PXC_PITR + "  pathPrefix: moved/orders\n", [
            "backup bucket/path prefix (breaks the PITR chain): changed bucket-a/shop/orders → bucket-a/moved/orders",
        ]),
        ("percona-server-mongodb", PSMDB, PSMDB.replace("replicas: 3", "replicas: 1"), ["engine replicas: decreased 3 → 1"]),
        ("percona-server-mongodb", PSMDB_SHARDED, PSMDB_SHARDED.replace("shards: 3", "shards: 2"), ["shards: decreased 3 → 2"]),
        ("percona-server-mongodb", PSMDB_SHARDED, PSMDB, ["sharding: turned off"]),
        ("percona-postgresql", PG_BACKUPS, PG_BACKUPS.replace("    - {name: a, schedule: \"0 1 * * *\", backupStorage: s3-a}\n", ""), [
            "backup storage (pgBackRest repository): removed",
            "pgBackRest repository bucket (repositories renumbered or moved): changed bucket-a → bucket-b",
        ]),
        ("percona-postgresql", "instances: {engine: {}, proxy: {}}\ncomponents: {versions: {postgresql: {version: 18.3-2}}}\n",
         "instances: {engine: {}, proxy: {}}\ncomponents: {versions: {postgresql: {version: 17.9-2}}}\n",
         ["PostgreSQL major version: downgraded 18 → 17", "engine version: downgraded percona/percona-distribution-postgresql:18.3-2 →"
          " percona/percona-distribution-postgresql:17.9-2"]),
    ],
    ids=["storage-class", "proxy-type", "secrets-name", "downgrade", "pitr-removed", "path-prefix", "replicas", "shards", "sharding",
         "pg-renumbered", "pg-major"],
)  # fmt: skip
def test_each_destructive_change_is_named_in_the_providers_words(repo, provider, before, after, expected):
    rendered(repo, ("clusters/shop/orders.yaml", cluster(provider, before)))
    repo.write("clusters/shop/orders.yaml", cluster(provider, after))
    found = whats(repo)
    assert [line for line in found if line in expected] == expected, found
    assert run("diff", "--repo", str(repo.root)).exit_code == 1  # listed, not stopped
    assert run("diff", "--repo", str(repo.root), "--fail-on-destructive").exit_code == 4


def test_growing_is_not_destructive(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC)))
    repo.write("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC.replace("100Gi", "200Gi").replace("proxy: {}", "proxy: {replicas: 5}")))
    assert destructive(repo) == []
    assert run("diff", "--repo", str(repo.root), "--fail-on-destructive").exit_code == 1


def test_a_storage_shrink_is_refused_outright(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC)))
    before = (repo.root / "out/shop/orders.yaml").read_bytes()
    repo.write("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC.replace("100Gi", "50Gi")))
    (change,) = destructive(repo)
    assert (change["what"], change["message"], change["refused"]) == ("engine storage size", "decreased 100Gi → 50Gi", True)
    for command in (["diff"], ["render"], ["render", "--check"]):
        result = run(*command, "--repo", str(repo.root))
        assert result.exit_code == 4, (command, result.stderr)
        assert (
            "error: PerconaXtraDBCluster shop/orders: engine storage size decreased 100Gi → 50Gi: refused: the operators cannot shrink volumes"
            in result.stderr
        )
    assert (repo.root / "out/shop/orders.yaml").read_bytes() == before  # nothing written


def test_destructive_changes_come_first_in_every_format(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-server-mongodb", PSMDB)))
    repo.write("clusters/shop/orders.yaml", cluster("percona-server-mongodb", PSMDB.replace("replicas: 3", "replicas: 1")))
    text = run("diff", "--repo", str(repo.root)).stdout
    assert text.startswith(
        "destructive changes (1):\n  PerconaServerMongoDB shop/orders: engine replicas decreased 3 → 1 (at spec.replsets[0].size)\n\n--- a/out/"
    )
    markdown = run("diff", "--repo", str(repo.root), "--format", "markdown").stdout
    assert markdown.startswith(
        "**0 added, 1 changed, 0 removed, 1 destructive**\n\n### Destructive changes\n\n"
        "- :warning: PerconaServerMongoDB shop/orders: engine replicas decreased 3 → 1 (at spec.replsets[0].size)\n"
    )
    assert list(json.loads(run("diff", "--repo", str(repo.root), "--format", "json").stdout)) == ["destructive", "counts", "explanations", "files"]


def test_fail_on_destructive_stops_render_and_check(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-server-mongodb", PSMDB)))
    repo.write("clusters/shop/orders.yaml", cluster("percona-server-mongodb", PSMDB.replace("replicas: 3", "replicas: 1")))
    check = run("render", "--repo", str(repo.root), "--check", "--fail-on-destructive")
    assert check.exit_code == 4
    assert "error: 1 destructive change (--fail-on-destructive)" in check.stderr
    written = run("render", "--repo", str(repo.root))  # without the flag: a warning, and written
    assert written.exit_code == 0
    assert written.stderr.startswith("warning: destructive change: PerconaServerMongoDB shop/orders: engine replicas decreased 3 → 1")


def test_a_removed_database_names_the_finalizer_that_deletes_its_volumes(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-postgresql", "instances: {engine: {}, proxy: {}}\n")))
    (repo.root / "clusters/shop/orders.yaml").unlink()
    repo.write("clusters/shop/other.yaml", cluster("percona-server-mongodb", PSMDB, name="other"))
    (change,) = destructive(repo)
    assert (change["kind"], change["what"], change["message"], change["removal"]) == (
        "PerconaPGCluster",
        "database",
        "removed: its volumes are deleted by finalizer percona.com/delete-pvc",
        True,
    )
    assert run("render", "--repo", str(repo.root)).exit_code == 0  # one removal needs no flag


def test_removing_more_than_one_database_needs_allow_removals(repo):
    rendered(
        repo,
        ("clusters/shop/a.yaml", cluster("percona-server-mongodb", PSMDB, name="a")),
        ("clusters/shop/b.yaml", cluster("percona-server-mongodb", PSMDB, name="b")),
        ("clusters/shop/c.yaml", cluster("percona-server-mongodb", PSMDB, name="c")),
    )
    (repo.root / "clusters/shop/a.yaml").unlink()
    (repo.root / "clusters/shop/b.yaml").unlink()
    for command in (["render"], ["render", "--check"], ["diff"]):
        result = run(*command, "--repo", str(repo.root))
        assert result.exit_code == 4, command
        assert "error: 2 databases would be removed at once (more than 1): pass --allow-removals if that is meant" in result.stderr
    assert (repo.root / "out/shop/a.yaml").is_file()
    assert run("render", "--repo", str(repo.root), "--allow-removals").exit_code == 0
    assert not (repo.root / "out/shop/a.yaml").exists()


def test_a_removal_under_deletion_protection_says_the_database_stays(repo):
    protected = cluster("percona-server-mongodb", PSMDB).replace("namespace: shop}", "namespace: shop, annotations: {everest-render/deletion-protection: confirm}}")
    rendered(repo, ("clusters/shop/orders.yaml", protected), ("clusters/shop/other.yaml", cluster("percona-server-mongodb", PSMDB, name="other")))
    (repo.root / "clusters/shop/orders.yaml").unlink()
    (change,) = destructive(repo)
    assert "deletion protection was on: Argo CD and Flux leave it in the cluster until someone deletes it" in change["message"]


# --- reviewable markdown -------------------------------------------------------------------------


def test_markdown_explains_a_preset_that_moved_with_the_memory(repo):
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC)))
    repo.write("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", PXC.replace("memory: 8G", "memory: 32G")))
    markdown = run("diff", "--repo", str(repo.root), "--format", "markdown").stdout
    assert "### Derived changes\n\n- PerconaXtraDBCluster shop/orders spec.pxc.configuration: memory 8G → 32G: size class medium → large\n" in markdown


def test_markdown_stays_under_the_comment_limit(repo):
    files = [(f"clusters/shop/c{i}.yaml", cluster("percona-server-mongodb", PSMDB, name=f"c{i}")) for i in range(30)]
    rendered(repo, *files)
    for path, text in files:
        repo.write(path, text.replace("replicas: 3", "replicas: 5"))
    full = run("diff", "--repo", str(repo.root), "--format", "markdown").stdout
    assert len(full) < 65_536 and "more file" not in full
    cut = run("diff", "--repo", str(repo.root), "--format", "markdown", "--max-chars", "4000").stdout
    assert len(cut) <= 4000
    assert cut.startswith("**0 added, 30 changed, 0 removed, 0 destructive**")
    shown = cut.count("<details>")
    assert 0 < shown < 30
    assert f"… and {30 - shown} more files (run everest-render diff locally for all)\n" in cut


def test_the_core_holds_no_engine_knowledge():
    source = (PROJECT_ROOT / "everest_render/commands/guardrails.py").read_text()
    for word in ("pxc", "psmdb", "pgbackrest", "replsets", "postgres", "mongo", "percona"):
        assert word not in source.lower(), word


def test_every_built_in_provider_declares_what_its_fields_mean():
    from everest_render.pipeline import read_repository, resolve_repository

    catalog = resolve_repository(read_repository(Path(PROJECT_ROOT))).catalog
    assert catalog is not None
    for name in ("percona-server-mongodb", "percona-xtradb-cluster", "percona-postgresql"):
        provider = catalog.providers[name]
        meanings = {c.meaning for c in provider.gitops.changes}
        assert {"presence", "size", "identity", "count", "version"} <= meanings, name
        assert provider.gitops.volume_finalizers, name


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (b"spec: [\n", "not valid YAML (line 2, column 1: did not find expected node content)"),
        (b"kind: \xff\n", "not UTF-8 (byte 6)"),
    ],
)
def test_an_out_file_damaged_by_hand_stops_the_run_until_its_rewrite_is_allowed(repo, damage, problem):
    # What the damaged file held cannot be compared: a removal among it cannot be ruled out.
    rendered(repo, ("clusters/shop/orders.yaml", cluster("percona-server-mongodb", PSMDB)))
    (repo.root / "out/shop/orders.yaml").write_bytes(damage)
    described = f"{repo.root.as_posix()}/out/shop/orders.yaml: {problem}: the objects it held cannot be compared"
    for command in (["render"], ["render", "--check"], ["diff"], ["render", "--allow-removals", "--fail-on-destructive"]):
        result = run(*command, "--repo", str(repo.root))
        assert result.exit_code == 4, command
        assert "Traceback" not in result.stderr
        option = "--fail-on-destructive" if "--allow-removals" in command else "pass --allow-removals if rewriting it is meant"
        assert f"error: {described}, so removed databases cannot be ruled out ({option})" in result.stderr, command
        assert (repo.root / "out/shop/orders.yaml").read_bytes() == damage
    allowed = run("render", "--repo", str(repo.root), "--allow-removals")
    assert allowed.exit_code == 0
    assert f"warning: {described}" in allowed.stderr
    assert (repo.root / "out/shop/orders.yaml").read_bytes().startswith(b"---\napiVersion: psmdb.percona.com/v1\n")
    assert run("render", "--repo", str(repo.root)).exit_code == 0
