"""mlflow is far too large for Lambda: no function code path may import it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import publish

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from tests.apigw_events import FakeLambdaContext, rest_v1_event
import lambda_api.handler
rows = json.loads(sys.argv[1])
event = rest_v1_event("POST", "/predict", json.dumps({"instances": rows}), {"Content-Type": "application/json"})
response = lambda_api.handler.handler(event, FakeLambdaContext())
assert response["statusCode"] == 200, response
for module in ("lambda_batch.handler", "lambda_promote.webhook", "lambda_promote.redeploy"):
    try:
        __import__(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
print(json.dumps(sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))))
"""


def test_lambda_code_paths_never_import_mlflow(tmp_path: Path, demo_registry: Any, breast_cancer: Any) -> None:
    from mlserve.store import LocalStore

    store = LocalStore(tmp_path / "store")
    publish(store, demo_registry.classifier_dir)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "MLSERVE_STORE": store.uri,
        "MLSERVE_MODEL_NAME": "demo-classifier",
        "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
    }
    rows = json.dumps(breast_cancer.head(2).to_dict(orient="records"))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, rows], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
