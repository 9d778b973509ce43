"""`mlserve promote --store`, `status` and `rollback` against a local store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlserve.cli import main


def test_promote_status_rollback(demo_registry: Any, tmp_path: Path, capsys: Any) -> None:
    store = (tmp_path / "store").as_uri()
    v2 = tmp_path / "v2"
    shutil.copytree(demo_registry.classifier_dir, v2)
    (v2 / "MLmodel").write_text((v2 / "MLmodel").read_text() + "\n")

    base = ["--store", store, "--no-registry", "--tracking-uri", demo_registry.tracking_uri]
    assert main(["promote", "demo-classifier", "1", *base]) == 0
    assert json.loads(capsys.readouterr().out)["redeploy"]["status"] == "deployed"
    assert main(["promote", "demo-classifier", "2", *base, "--artifact-uri", str(v2)]) == 0
    assert main(["promote", "demo-classifier", "2", *base, "--artifact-uri", str(v2)]) == 0
    outputs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["redeploy"]["status"] for o in outputs] == ["deployed", "already_live"]

    assert main(["rollback", "demo-classifier", "--store", store, "--no-registry"]) == 0
    assert json.loads(capsys.readouterr().out)["live"] == "1"
    assert main(["status", "demo-classifier", "--store", store, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["live"]["version"] == "1"
    assert [(a["version"], a["status"]) for a in report["attempts"]] == [
        ("1", "succeeded"),
        ("2", "succeeded"),
        ("1", "succeeded"),
    ]
    assert main(["status", "demo-classifier", "--store", store]) == 0
    assert "live version 1" in capsys.readouterr().out
    assert main(["rollback", "demo-classifier", "--store", store, "--no-registry", "--to", "9"]) == 2
