"""Generate a deterministic fleet of N DatabaseClusters (a GitOps repository) for benchmarks."""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".fleet")
    args = parser.parse_args()
    write_fleet(args.out, args.clusters)
    print(f"wrote {args.clusters} clusters under {args.out}")


if __name__ == "__main__":
    main()
