"""Generate a deterministic fleet of N DatabaseClusters (a GitOps repository) for benchmarks."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

# Cluster shapes cycled through the fleet: every engine and topology the built-ins offer.
SHAPES = {
    "mongodb-standard": """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{team: team-{team}}}
spec:
  provider: percona-server-mongodb
  instances:
    engine:
      replicas: 3
      resources: {{cpu: "1", memory: 4G}}
      storage: {{size: 25Gi, class: standard}}
      expose: {{type: LoadBalancer, sourceRanges: [10.0.0.0/8]}}
    backupAgent: {{}}
""",
    "mysql-haproxy": """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata:
  name: {name}
  namespace: {namespace}
spec:
  provider: percona-xtradb-cluster
  instances:
    engine: {{replicas: 3, resources: {{cpu: "2", memory: 8G}}, storage: {{size: 100Gi}}}}
    proxy: {{replicas: 2, expose: {{type: LoadBalancer, sourceRanges: [10.0.0.0/8]}}}}
""",
    "postgresql-backups": """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata:
  name: {name}
  namespace: {namespace}
spec:
  provider: percona-postgresql
  instances:
    engine:
      replicas: 2
      resources: {{cpu: "1", memory: 4G}}
      storage: {{size: 50Gi}}
      config: |
        max_connections = 200
        shared_buffers 1GB
    proxy: {{replicas: 2, expose: {{type: ClusterIP}}}}
""",
    "mongodb-sharded": """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata:
  name: {name}
  namespace: {namespace}
spec:
  provider: percona-server-mongodb
  topology: {{type: sharded, config: {{shards: 2}}}}
  instances:
    engine: {{resources: {{cpu: "2", memory: 8G}}, storage: {{size: 50Gi}}}}
    configServer: {{}}
    proxy: {{replicas: 2, expose: {{type: ClusterIP}}}}
""",
}


def write_fleet(root: Path, clusters: int, shapes: list[str] | None = None) -> Path:
    shapes = shapes or sorted(SHAPES)
    if root.exists():
        shutil.rmtree(root)
    for index in range(clusters):
        shape = shapes[index % len(shapes)]
        namespace = f"team-{index % 50:02d}"
        path = root / "clusters" / namespace / f"db-{index:05d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SHAPES[shape].format(name=f"db-{index:05d}", namespace=namespace, team=index % 7))
    return root


# The example repository's clusters/: every engine (the three Percona operators and
# CloudNativePG), an Instance of the newer API, backups with schedules and PITR on S3 and
# Azure, monitoring, sharding, and every proxy type (HAProxy, ProxySQL, PgBouncer, mongos).
EXAMPLE_CLUSTERS = Path(__file__).resolve().parent.parent / "clusters"
# And the three built-in extensions turned on, as the tests render the example fleet.
EXTENSIONS_ON = Path(__file__).resolve().parent.parent / "examples" / "builtin-extensions" / "everest-render.yaml"
_CLUSTER_KINDS = re.compile(r"^kind: (DatabaseCluster|Instance)$", re.MULTILINE)
_NAMESPACE = re.compile(r"^(\s*namespace: )([a-z0-9-]+)$", re.MULTILINE)


def write_example_fleet(root: Path, clusters: int) -> Path:
    """At least ``clusters`` clusters: copies of the example repository's clusters/, copy N in
    namespaces ``<namespace>-N`` (its BackupStorages and MonitoringConfigs with it), with the
    built-in extensions on (``EXTENSIONS_ON``)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copyfile(EXTENSIONS_ON, root / "everest-render.yaml")
    files = sorted(p for p in EXAMPLE_CLUSTERS.rglob("*.yaml") if p.is_file())
    written = 0
    copy = 0
    while written < clusters:
        for path in files:
            text = path.read_text()
            held = len(_CLUSTER_KINDS.findall(text))
            if held and written >= clusters:
                continue  # the last copy: only what the clusters already written refer to
            written += held
            target = root / "clusters" / f"{path.parent.name}-{copy:04d}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_NAMESPACE.sub(lambda m, c=copy: f"{m.group(1)}{m.group(2)}-{c:04d}", text))  # type: ignore[misc]
        copy += 1
    return root


def count_clusters(root: Path) -> int:
    return sum(len(_CLUSTER_KINDS.findall(p.read_text())) for p in (root / "clusters").rglob("*.yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".fleet")
    args = parser.parse_args()
    write_fleet(args.out, args.clusters)
    print(f"wrote {args.clusters} clusters under {args.out}")


if __name__ == "__main__":
    main()
