"""No secret value is echoed, in any output format (the corpus checks the text format)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from everest_render.commands.cli import main as cli_main
from everest_render.load.files import MAX_FILE_BYTES
from tests.conftest import mongodb

SECRET = "wJalrXUtnFEMIK7MDENG"
STORAGE = f"""\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {{name: s3, namespace: shop}}
spec:
  type: s3
  bucket: b
  region: {{secretAccessKey: {SECRET}}}
  endpointURL: https://AKIAEXAMPLE:{SECRET}@s3.example.com
  credentialsSecretName: c
"""


def _repo(tmp_path):
    (tmp_path / "clusters/shop").mkdir(parents=True)
    (tmp_path / "clusters/shop/orders.yaml").write_text(mongodb())
    (tmp_path / "clusters/shop/storage.yaml").write_text(STORAGE)
    return tmp_path


def test_the_json_report_masks_credentials(tmp_path):
    result = CliRunner().invoke(cli_main, ["validate", "--repo", str(_repo(tmp_path)), "--format", "json"])
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    messages = [d["message"] for d in report["diagnostics"]]
    assert any("must not carry credentials" in m for m in messages)
    assert any("***" in m for m in messages)
    assert SECRET not in result.stdout + result.stderr and "AKIAEXAMPLE" not in result.stdout + result.stderr


def test_annotations_mask_credentials(tmp_path):
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(_repo(tmp_path)), "--annotations", "github"])
    assert result.exit_code == 3
    assert "::error" in result.stderr and "***" in result.stderr  # reported, masked (not dropped)
    assert SECRET not in result.stdout + result.stderr and "AKIAEXAMPLE" not in result.stderr


def test_a_file_beyond_the_size_limit_is_refused_unread(tmp_path):
    (tmp_path / "clusters/shop").mkdir(parents=True)
    (tmp_path / "clusters/shop/orders.yaml").write_text(mongodb())
    with open(tmp_path / "clusters/shop/huge.yaml", "wb") as huge:
        huge.truncate(MAX_FILE_BYTES + 1)
    result = CliRunner().invoke(cli_main, ["render", "--repo", str(tmp_path), "--quiet"])
    assert result.exit_code == 3
    assert result.stderr == "clusters/shop/huge.yaml:1:1: cannot be read: larger than 8 MiB, the limit for an input file\n"
    assert not (tmp_path / "out").exists()
