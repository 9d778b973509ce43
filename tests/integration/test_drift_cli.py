"""`mlserve publish --reference` and `mlserve drift`, end to end on a local store with a
real MLflow model: the profile is staged and checksummed beside the version, the served
app captures into the local store (the Firehose stand-in), and `mlserve drift --store`
finds the shift; CSV mode's JSON shape and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlserve.cli import main

SHIFTED = "mean radius"


@pytest.fixture
def reference_csv(breast_cancer: Any, tmp_path: Path) -> Path:
    path = tmp_path / "reference.csv"
    breast_cancer.to_csv(path, index=False)
    return path


def publish(store: Path, model_dir: Path, reference: Path | None, version: str = "1") -> int:
    args = ["publish", str(model_dir), "--store", store.as_uri(), "--name", "m", "--version", version]
    return main([*args, "--reference", str(reference)] if reference else args)


def test_publish_stores_a_checksummed_profile_and_the_model_still_loads(
    demo_registry: Any, reference_csv: Path, tmp_path: Path
) -> None:
    from mlserve.live import LiveModel
    from mlserve.publish import StageRequest, stage_and_activate
    from mlserve.store import open_store

    store_dir = tmp_path / "store"
    assert publish(store_dir, demo_registry.classifier_dir, reference_csv) == 0
    version_dir = store_dir / "models/m/versions/1"
    profile = json.loads((version_dir / "profile.json").read_text())
    checksums = json.loads((version_dir / "checksums.json").read_text())
    assert "profile.json" in checksums
    assert len(profile["columns"]) == 30 and profile["rows"] == 569
    assert profile["prediction"]["kind"] == "categorical" and set(profile["prediction"]["categories"]) == {"0", "1"}
    assert (version_dir / "profile.json").stat().st_size < 150 * 1024
    pointer = json.loads((store_dir / "models/m/live.json").read_text())
    assert "profile.json" in pointer["checksums"]
    store = open_store(store_dir.as_uri())
    live = LiveModel(store, "m", cache_dir=tmp_path / "cache")
    assert live.get().identity.version == "1"

    # A redeploy of the same version (no profile at hand) keeps the recorded one.
    result = stage_and_activate(
        store, StageRequest(name="m", version="1", model_dir=demo_registry.classifier_dir, source="redeploy")
    )
    assert "profile.json" in result.pointer["checksums"]


def test_a_reference_without_a_signature_column_is_refused_and_nothing_staged(
    demo_registry: Any, breast_cancer: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    breast_cancer.drop(columns=[SHIFTED]).to_csv(bad, index=False)
    assert publish(tmp_path / "store", demo_registry.classifier_dir, bad) == 2
    assert SHIFTED in capsys.readouterr().err
    assert not (tmp_path / "store/models/m/live.json").exists()


def test_served_app_captures_locally_and_drift_store_mode_finds_the_shift(
    demo_registry: Any,
    breast_cancer: Any,
    reference_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fastapi.testclient import TestClient

    from lambda_api.app import create_app
    from mlserve.monitoring import capture

    store_dir = tmp_path / "store"
    assert publish(store_dir, demo_registry.classifier_dir, reference_csv) == 0
    monkeypatch.setenv("MLSERVE_STORE", store_dir.as_uri())
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "m")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_CAPTURE_DIR", str(store_dir))
    monkeypatch.setenv("MLSERVE_CAPTURE_COLUMNS", "*")
    monkeypatch.setenv("MLSERVE_CAPTURE_FLUSH_SECONDS", "3600")
    capture.reset_capturer()
    try:
        client = TestClient(create_app())
        shifted = breast_cancer.copy()
        shifted[SHIFTED] = shifted[SHIFTED] * 1.6
        for start in range(0, len(shifted), 100):
            chunk = shifted.iloc[start : start + 100]
            response = client.post(
                "/invocations", content=chunk.to_csv(index=False), headers={"content-type": "text/csv"}
            )
            assert response.status_code == 200
        recorder = capture.capturer()
        assert recorder is not None and recorder.flush() > 0
        assert client.get("/monitoring/latest").json()["status"] == "no_report"
    finally:
        capture.reset_capturer()
    capsys.readouterr()
    code = main(["drift", "--store", store_dir.as_uri(), "--name", "m", "--json", "--fail-on", "feature"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3
    assert report["drifted_features"] == [SHIFTED]
    assert set(report) == {"features", "drifted_features", "share_drifted", "dataset_drift"}


def test_drift_store_mode_without_a_reference_says_so(
    demo_registry: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish(tmp_path / "store", demo_registry.classifier_dir, None) == 0
    capsys.readouterr()
    assert main(["drift", "--store", (tmp_path / "store").as_uri(), "--name", "m"]) == 2
    assert "no reference profile" in capsys.readouterr().err


def test_drift_csv_mode_json_shape_and_exit_codes(
    breast_cancer: Any, reference_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same.csv"
    breast_cancer.sample(frac=1.0, random_state=1).to_csv(same, index=False)
    assert main(["drift", "--reference", str(reference_csv), "--current", str(same), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"features", "drifted_features", "share_drifted", "dataset_drift"}
    assert all(set(f) == {"test", "statistic", "p_value", "psi", "drifted"} for f in report["features"].values())
    assert report["drifted_features"] == [] and report["dataset_drift"] is False

    drifted = tmp_path / "drifted.csv"
    frame = breast_cancer.copy()
    for column in list(frame.columns)[:20]:
        frame[column] = frame[column] * 2
    frame.to_csv(drifted, index=False)
    assert main(["drift", "--reference", str(reference_csv), "--current", str(drifted)]) == 3
    table = capsys.readouterr().out
    assert "DRIFT" in table and "dataset drift: YES" in table

    missing = tmp_path / "missing.csv"
    breast_cancer.drop(columns=[SHIFTED]).to_csv(missing, index=False)
    assert main(["drift", "--reference", str(reference_csv), "--current", str(missing)]) == 2
    assert SHIFTED in capsys.readouterr().err


def test_the_page_has_the_monitoring_view_under_the_strict_csp(
    demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from lambda_api.app import create_app

    assert publish(tmp_path / "store", demo_registry.classifier_dir, None) == 0
    monkeypatch.setenv("MLSERVE_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "m")
    client = TestClient(create_app())
    page = client.get("/")
    assert 'id="monitoring"' in page.text and 'src="ui/static/monitoring.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/ui/static/monitoring.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "monitoring/latest" in script.text
    assert client.get("/monitoring/latest").json() == {
        "status": "no_report",
        "model": "m",
        "message": "the drift job has not written a report yet",
    }
    missing = client.get("/monitoring/latest.html")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
