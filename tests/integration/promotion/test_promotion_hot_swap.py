"""Requests keep flowing through the API handler while a promotion lands: zero errors,
and every client sees exactly one switch, old -> new."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlserve.promotion.events import ModelPromoted
from mlserve.promotion.redeploy import RedeployConfig, Redeployer, Resolved
from tests.integration.promotion.conftest import BUS, MODEL, MODEL_BUCKET, Aws

CLIENTS = 3


def test_requests_in_flight_see_a_single_switch(
    aws: Aws, api: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_REFRESH_SECONDS", "0.2")
    v2 = tmp_path / "v2"
    shutil.copytree(demo_registry.classifier_dir, v2)
    (v2 / "MLmodel").write_text((v2 / "MLmodel").read_text() + "\n")  # different content, same model
    dirs = {"1": demo_registry.classifier_dir, "2": v2}

    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        shutil.copytree(dirs[promotion.version], dest)
        return Resolved(dest, f"test:{promotion.version}", None)

    deployer = Redeployer(
        RedeployConfig(store_uri=f"s3://{MODEL_BUCKET}", bus=BUS),
        events_client=aws.events,
        target_lookup=lambda p: None,
        resolver=resolve,
        s3_client=aws.s3,
    )
    assert deployer.redeploy(ModelPromoted(MODEL, "1", "cli")).status == "deployed"

    from examples.train import breast_cancer_frame

    rows = breast_cancer_frame()[0].head(1).to_dict(orient="records")
    stop = threading.Event()
    seen: list[list[tuple[int, str | None]]] = [[] for _ in range(CLIENTS)]
    errors: list[BaseException] = []

    def client(index: int) -> None:
        # Mangum drives the ASGI app on the thread's event loop; a Lambda environment has one.
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                status, _body, headers = api(rows)
                seen[index].append((status, headers.get("x-mlserve-model-version") or str(_body)[:300]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while min(len(s) for s in seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert deployer.redeploy(ModelPromoted(MODEL, "2", "cli")).status == "deployed"
        deadline = time.monotonic() + 30
        while not all(sum(v == "2" for _, v in s) >= 3 for s in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    for responses in seen:
        assert {status for status, _ in responses} == {200}, [r for r in responses if r[0] != 200][:3]
        versions = [v for _, v in responses]
        switches = sum(1 for a, b in itertools.pairwise(versions) if a != b)
        assert versions[0] == "1" and versions[-1] == "2" and switches == 1, versions
