"""A tiny Kubernetes API on loopback for `diff --live` tests: discovery and GET of objects."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PLURALS = {"PerconaServerMongoDB": "perconaservermongodbs", "PerconaXtraDBCluster": "perconaxtradbclusters",
           "PerconaPGCluster": "perconapgclusters"}


@contextmanager
def fake_kube_api(objects: list[dict[str, Any]], kubeconfig: Path) -> Iterator[list[str]]:
    """Serve ``objects`` and write a kubeconfig for it; yields the list of requested paths."""
    by_path: dict[str, Any] = {}
    groups: dict[str, list[dict[str, str]]] = {}
    for obj in objects:
        plural = PLURALS[obj["kind"]]
        meta = obj["metadata"]
        by_path[f"/apis/{obj['apiVersion']}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"] = obj
    for kind, plural in PLURALS.items():
        for api_version in ("psmdb.percona.com/v1", "pxc.percona.com/v1", "pgv2.percona.com/v2"):
            groups.setdefault(f"/apis/{api_version}", [])
            if plural.startswith({"psmdb.percona.com/v1": "perconaserver", "pxc.percona.com/v1": "perconaxtra",
                                  "pgv2.percona.com/v2": "perconapg"}[api_version]):
                groups[f"/apis/{api_version}"] += [{"kind": kind, "name": plural}, {"kind": kind, "name": f"{plural}/status"}]
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            requested.append(path)
            if path in by_path:
                self._send(200, by_path[path])
            elif path in groups:
                self._send(200, {"kind": "APIResourceList", "resources": groups[path]})
            elif path.rstrip("/") == "/version":
                self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
            else:
                self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "message": "not found", "code": 404})

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{server.server_port}'}}}}]\n"
        "users: [{name: fake, user: {token: test}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]\n"
        "current-context: fake\n"
    )
    try:
        yield requested
    finally:
        server.shutdown()
        server.server_close()
