"""The stream consumer and the scheduled function never import mlflow (too large for Lambda)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import publish

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
from pathlib import Path
import lambda_batch.stream, lambda_batch.scheduled, mlserve.stream_tools
from mlserve.live import LiveModel
from mlserve.store import open_store
from mlserve.stream import StreamRecord, score_records
live = LiveModel(open_store(sys.argv[2]), "demo-classifier", cache_dir=Path(sys.argv[3]))
record = StreamRecord("1", "k", json.dumps({"instances": json.loads(sys.argv[1])}).encode())
scored = score_records(live.get(), [record])
assert len(scored.scored) == 1 and not scored.rejected, scored
print(json.dumps(sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))))
"""


def test_stream_and_scheduled_code_paths_never_import_mlflow(
    tmp_path: Path, demo_registry: Any, breast_cancer: Any
) -> None:
    from mlserve.store import LocalStore

    store = LocalStore(tmp_path / "store")
    publish(store, demo_registry.classifier_dir)
    rows = json.dumps(breast_cancer.head(2).to_dict(orient="records"))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, rows, store.uri, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{ROOT / 'layers/common/python'}"},
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
