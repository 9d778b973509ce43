"""Deployed end to end: a file over the fan-out threshold goes through the Step Functions
Distributed Map (plan -> ranges -> merge) and its predictions equal model.predict in the
original row order, byte-identical to scoring the whole file in one go.

Needs the stack deployed with a small threshold and range size, e.g.
    MLSERVE_E2E_CDK_CONTEXT="<run.sh's default words> -c fanout_threshold_bytes=1048576 -c fanout_range_bytes=8388608"
(otherwise skipped with that reason)."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import publish
from tests.e2e.conftest import Deployed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

MODEL = "demo-classifier"
MIB = 1024 * 1024


def batch_function_environment(deployed: Deployed) -> dict[str, str]:
    client = deployed.client("lambda")
    for page in client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            variables = (function.get("Environment") or {}).get("Variables") or {}
            if "MLSERVE_FANOUT_STATE_MACHINE_ARN" in variables:
                return dict(variables)
    return {}


@pytest.fixture(scope="module")
def live(deployed: Deployed, demo_registry: Any) -> Deployed:
    from mlserve.live import read_pointer
    from mlserve.store import open_store

    store = open_store(f"s3://{deployed.model_bucket}", s3_client=deployed.client("s3"))
    if read_pointer(store, MODEL) is None:
        publish(store, demo_registry.classifier_dir, name=MODEL, version="1", run_id=demo_registry.classifier_run_id)
    return deployed


def test_big_file_fans_out_and_matches_single_function_scoring(
    live: Deployed, demo_registry: Any, breast_cancer: pd.DataFrame, tmp_path: Any
) -> None:
    env = batch_function_environment(live)
    threshold = int(env.get("MLSERVE_FANOUT_THRESHOLD_BYTES") or 0)
    if not threshold or threshold > 16 * MIB:
        pytest.skip(
            "deploy with -c fanout_threshold_bytes=1048576 -c fanout_range_bytes=8388608 to send a test-sized "
            f"file through the fan-out (deployed threshold: {threshold or 'none'})"
        )
    rows = 80_000
    data = pd.concat([breast_cancer] * (rows // len(breast_cancer) + 1), ignore_index=True).head(rows)
    data.insert(0, "note", ["two\nlines" if i % 7 == 0 else "plain" for i in range(rows)])
    body = data.to_csv(index=False).encode()
    assert len(body) > max(threshold, 16 * MIB)
    s3 = live.client("s3")
    name = f"e2e-fanout-{uuid.uuid4().hex[:8]}.csv"
    started = time.monotonic()
    s3.put_object(Bucket=live.batch_bucket, Key=f"incoming/{name}", Body=body)

    def report() -> Any:
        try:
            return json.loads(s3.get_object(Bucket=live.batch_bucket, Key=f"results/{name}.report.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    deadline = time.monotonic() + 900
    found = report()
    while found is None and time.monotonic() < deadline:
        time.sleep(3)
        found = report()
    assert found is not None, "no report within 15 minutes"
    seconds = time.monotonic() - started
    print(f"fan-out of {len(body)} bytes, {rows} rows: {found.get('fanout')}, {seconds:.1f} s to the report")
    assert found["status"] == "succeeded", found.get("error")
    assert found["fanout"]["ranges"] >= 2 and found["fanout"]["execution"]
    assert (found["rows_read"], found["rows_scored"], found["rows_rejected"]) == (rows, rows, 0)

    merged = bytes(s3.get_object(Bucket=live.batch_bucket, Key=f"results/{name}.predictions.csv")["Body"].read())
    out = pd.read_csv(io.BytesIO(merged))
    import skops.io

    from mlserve.loader import TRUSTED_TYPES

    model = skops.io.load(demo_registry.classifier_dir / "model.skops", trusted=list(TRUSTED_TYPES))
    np.testing.assert_array_equal(
        out["prediction"].to_numpy(), model.predict(breast_cancer.iloc[np.arange(rows) % len(breast_cancer)])
    )
    assert list(out["note"]) == list(data["note"])  # the original row order

    # Byte for byte what one function scoring the whole file writes (the same scorer, locally,
    # with the version the report names).
    from mlserve.batch.core import BatchOptions, score_stream
    from mlserve.live import load_version, read_pointer
    from mlserve.store import open_store

    store = open_store(f"s3://{live.model_bucket}", s3_client=live.client("s3"))
    pointer = read_pointer(store, MODEL)
    assert pointer is not None and str(pointer["version"]) == found["model"]["version"]
    loaded = load_version(store, pointer, tmp_path / "cache", allow_pickle=False)

    class Collect:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, chunk: bytes) -> None:
            self.data += chunk

        def commit(self) -> None: ...

        def abort(self) -> None: ...

    single = Collect()
    score_stream(io.BytesIO(body), single, loaded, BatchOptions())
    assert merged == bytes(single.data)
