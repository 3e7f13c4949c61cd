"""Other kinds under clusters/ go to out/<namespace>/ as they are; SOPS files byte for byte."""

from __future__ import annotations

import yaml

from tests.conftest import mongodb

SOPS_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
    name: s3-main-credentials
    namespace: shop
data:
    AWS_ACCESS_KEY_ID: ENC[AES256_GCM,data:abc=,iv:xyz=,tag:t=,type:str]
sops:
    mac: ENC[AES256_GCM,data:m=,iv:i=,tag:t=,type:str]
    lastmodified: "2025-01-01T00:00:00Z"
    version: 3.9.0"""


def test_other_kinds_are_passed_through_per_namespace(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/extra.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata: {name: orders-users, namespace: shop}
        spec: {secretStoreRef: {name: vault, kind: ClusterSecretStore}, target: {name: everest-secrets-orders}}
        """)
    files = repo.result().plan.files
    assert sorted(files) == ["shop/_passthrough.yaml", "shop/orders.yaml"]
    assert [d["kind"] for d in yaml.safe_load_all(files["shop/_passthrough.yaml"])] == ["Namespace", "ExternalSecret"]


def test_a_sops_file_is_copied_byte_for_byte(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/creds.sops.yaml", SOPS_SECRET)
    files = repo.result().plan.files
    assert files["shop/_sops/clusters/shop/creds.sops.yaml"] == SOPS_SECRET.encode()


def test_a_sops_file_in_the_stream_starts_its_own_document(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/creds.sops.yaml", SOPS_SECRET)
    # Within a namespace: pass-through objects, then SOPS files, then clusters (see docs/output.md).
    kinds = [d["kind"] for d in repo.stream()]
    assert kinds == ["Secret", "PerconaServerMongoDB"]


def test_an_object_without_a_namespace_cannot_be_placed(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert repo.errors() == ["clusters/shop/cm.yaml:3:1: an object passed through to out/ needs metadata.namespace (ConfigMap is namespaced; cluster-scoped kinds are listed in docs/api.md) (at metadata)"]


def test_kustomization_files_are_not_inputs(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [orders.yaml]\n")
    assert sorted(repo.result().plan.files) == ["shop/orders.yaml"]


def test_sealed_secrets_pass_through_unchanged(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/sealed.yaml", """
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata: {name: orders-users, namespace: shop}
        spec: {encryptedData: {MONGODB_USER_ADMIN_PASSWORD: AgBy3i4OJSWK+PiTySYZZA==}}
        """)
    (sealed,) = yaml.safe_load_all(repo.result().plan.files["shop/_passthrough.yaml"])
    assert sealed["spec"] == {"encryptedData": {"MONGODB_USER_ADMIN_PASSWORD": "AgBy3i4OJSWK+PiTySYZZA=="}}
    assert "labels" not in sealed["metadata"]  # not ours: renderer labels are for rendered objects


def test_a_namespace_that_is_a_path_cannot_escape_out(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ../../etc}\n")
    assert repo.errors() == ["clusters/shop/cm.yaml:3:32: '../../etc' is not a valid namespace (RFC 1123 label) (at metadata.namespace)"]


def test_a_cluster_scoped_object_needs_no_namespace(repo):
    """The exemption of the namespace rule: a ClusterSecretStore has none, and is placed in _cluster/."""
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/store.yaml", """
        apiVersion: external-secrets.io/v1
        kind: ClusterSecretStore
        metadata: {name: vault}
        spec: {provider: {vault: {server: "https://vault.example.com"}}}
        """)
    result = repo.result()
    assert not result.failed, result.diagnostics
    assert sorted(result.plan.files) == ["_cluster/_passthrough.yaml", "shop/orders.yaml"]
    assert [d["kind"] for d in yaml.safe_load_all(result.plan.files["_cluster/_passthrough.yaml"])] == ["ClusterSecretStore"]
