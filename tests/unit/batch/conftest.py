"""Batch fixtures: the demo classifier published once per session into a local store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish


@pytest.fixture(scope="session")
def batch_store(demo_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlserve.store import open_store

    store = open_store((tmp_path_factory.mktemp("batch") / "store").as_uri())
    publish(store, demo_registry.classifier_dir, name="demo-classifier", version="1")
    return store


@pytest.fixture(scope="session")
def classifier(batch_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlserve.live import LiveModel

    live = LiveModel(batch_store, "demo-classifier", cache_dir=Path(tmp_path_factory.mktemp("cache")))
    return live.get()


def csv_bytes(frame: Any, **kwargs: Any) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()
