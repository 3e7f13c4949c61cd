"""Streams and selections: SOPS files in --stdout, the pass-through objects --only includes,
which selection owns a shared object, and who supplies each Secret (docs/gitops.md)."""

from __future__ import annotations

import json

import yaml

from tests.conftest import mongodb
from tests.test_cli import run

SOPS_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
    name: everest-secrets-orders
    namespace: shop
data:
    MONGODB_BACKUP_PASSWORD: ENC[AES256_GCM,data:abc=,iv:xyz=,tag:t=,type:str]
sops:
    mac: ENC[AES256_GCM,data:m=,iv:i=,tag:t=,type:str]
    version: 3.9.0
"""
PASSTHROUGH = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: catalog-users, namespace: shop}
spec: {secretStoreRef: {name: vault, kind: ClusterSecretStore}, target: {name: everest-secrets-catalog}}
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata: {name: shared-creds, namespace: shop}
spec: {encryptedData: {AWS_ACCESS_KEY_ID: AgB=}, template: {metadata: {name: s3-creds}}}
"""
STORAGE = """\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-main, namespace: shop}
spec: {type: s3, bucket: backups, region: eu-west-1, credentialsSecretName: s3-creds}
"""
WITH_BACKUPS = (
    "  instances:\n    engine: {}\n    backupAgent: {}\n"
    "  backup:\n    schedules: [{name: d, schedule: '0 1 * * *', backupStorage: s3-main}]\n"
)


def fleet(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body=WITH_BACKUPS))
    repo.write("clusters/shop/catalog.yaml", mongodb(name="catalog", body=WITH_BACKUPS))
    repo.write("clusters/shop/storage.yaml", STORAGE)
    repo.write("clusters/shop/passthrough.yaml", PASSTHROUGH)
    repo.write("clusters/shop/orders.sops.yaml", SOPS_SECRET)
    return repo


def stream(repo, *args: str) -> list[tuple[str, str]]:
    result = run("render", "--repo", str(repo.root), "--stdout", *args)
    assert result.exit_code == 0, result.stderr
    return [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout)]


# --- SOPS in a stream ----------------------------------------------------------------------------


def test_stdout_refuses_sops_files_it_cannot_decrypt(repo):
    fleet(repo)
    result = run("render", "--repo", str(repo.root), "--stdout")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "error: the stream would hold 1 SOPS-encrypted file (shop/_sops/clusters/shop/orders.sops.yaml) that nothing on this path"
        " decrypts: choose --sops omit (leave them out) or --sops keep (a plugin decrypts them)\n"
    )


def test_omit_leaves_them_out_and_keep_keeps_them(repo):
    fleet(repo)
    assert ("Secret", "everest-secrets-orders") not in stream(repo, "--sops", "omit")
    assert ("Secret", "everest-secrets-orders") in stream(repo, "--sops", "keep")
    assert ("Secret", "everest-secrets-orders") in stream(repo, "--sops", "keep", "--only", "shop/orders")


def test_writing_out_is_not_affected(repo):
    fleet(repo)
    assert run("render", "--repo", str(repo.root)).exit_code == 0
    assert (repo.root / "out/shop/_sops/clusters/shop/orders.sops.yaml").read_text() == SOPS_SECRET


def test_the_argo_cd_plugin_refuses_them_too(repo, monkeypatch):
    fleet(repo)
    monkeypatch.chdir(repo.root)
    result = run("argocd", "generate", env={"ARGOCD_APP_NAME": "dbs", "ARGOCD_APP_SOURCE_PATH": "."})
    assert result.exit_code == 3 and result.stdout == ""
    assert "error: dbs: the stream would hold 1 SOPS-encrypted file" in result.stderr and "sops=omit" in result.stderr
    kept = run("argocd", "generate", env={"ARGOCD_APP_NAME": "dbs", "ARGOCD_APP_SOURCE_PATH": ".", "ARGOCD_ENV_SOPS": "keep"})
    assert kept.exit_code == 0 and "sops:" in kept.stdout


# --- --only and the pass-through objects ---------------------------------------------------------


def test_only_a_cluster_includes_the_objects_that_supply_its_secrets(repo):
    fleet(repo)
    assert stream(repo, "--sops", "keep", "--only", "shop/catalog") == [
        ("ExternalSecret", "catalog-users"),
        ("PerconaServerMongoDB", "catalog"),
    ]
    assert stream(repo, "--sops", "keep", "--only", "shop/orders") == [
        ("Secret", "everest-secrets-orders"),
        ("PerconaServerMongoDB", "orders"),
    ]


def test_a_shared_object_belongs_to_exactly_one_selection(repo):
    fleet(repo)
    # The Namespace and the S3 credentials both clusters need are neither cluster's: deleting
    # one cluster's application cannot prune what the other needs.
    assert stream(repo, "--only", "shop/_shared") == [("Namespace", "shop"), ("SealedSecret", "shared-creds")]
    every = stream(repo, "--sops", "keep")
    parts = [*stream(repo, "--only", "shop/_shared"), *stream(repo, "--sops", "keep", "--only", "shop/catalog")]
    parts += stream(repo, "--sops", "keep", "--only", "shop/orders")
    assert sorted(parts) == sorted(every)  # every object in exactly one selection


def test_the_namespace_selection_holds_all_of_them(repo):
    fleet(repo)
    assert sorted(stream(repo, "--sops", "keep", "--only", "shop")) == sorted(stream(repo, "--sops", "keep"))


# --- explain names the supplier -----------------------------------------------------------------


def test_explain_names_the_object_that_supplies_each_secret(repo):
    fleet(repo)
    result = run("explain", "shop/catalog", "--repo", str(repo.root), "--format", "json")
    secrets = {s["name"]: s for s in json.loads(result.stdout)["secrets"]}
    assert secrets["everest-secrets-catalog"]["suppliedBy"] == "ExternalSecret shop/catalog-users (clusters/shop/passthrough.yaml)"
    assert secrets["s3-creds"]["suppliedBy"] == "SealedSecret shop/shared-creds (clusters/shop/passthrough.yaml)"
    text = run("explain", "shop/orders", "--repo", str(repo.root)).stdout
    assert "everest-secrets-orders: keys" in text
    assert "supplied by SOPS-encrypted Secret shop/everest-secrets-orders (clusters/shop/orders.sops.yaml)" in text

