from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mlserve.errors import ModelUnavailableError
from mlserve.live import LiveModel
from mlserve.store import LocalStore, live_key
from tests.conftest import publish


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pointer_reads = 0
        self.downloads = 0

    def read_if_changed(self, key: str, etag: str | None) -> Any:
        self.pointer_reads += 1
        return super().read_if_changed(key, etag)

    def download_prefix(self, prefix: str, dest: Path) -> Path:
        self.downloads += 1
        return super().download_prefix(prefix, dest)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "store")


def live_model(store: Any, tmp_path: Path, clock: Clock, refresh: float = 15.0) -> LiveModel:
    return LiveModel(store, "demo-classifier", refresh_seconds=refresh, cache_dir=tmp_path / "cache", clock=clock)


def test_no_pointer_means_unavailable_with_reason(store: CountingStore, tmp_path: Path) -> None:
    live = live_model(store, tmp_path, Clock())
    with pytest.raises(ModelUnavailableError, match="no live pointer at models/demo-classifier/live.json"):
        live.get()


def test_pointer_checked_at_most_once_per_window(store: CountingStore, tmp_path: Path, demo_registry: Any) -> None:
    publish(store, demo_registry.classifier_dir, version="1")
    clock = Clock()
    live = live_model(store, tmp_path, clock)
    assert live.get().identity.version == "1"
    reads, downloads = store.pointer_reads, store.downloads
    for _ in range(100):
        live.get()
    clock.now += 14.9
    live.get()
    assert store.pointer_reads == reads  # nothing inside the window
    clock.now += 0.2
    live.get()
    assert store.pointer_reads == reads + 1  # one conditional GET, unchanged: no reload
    assert store.downloads == downloads


def test_new_pointer_swaps_and_in_flight_reference_keeps_old(
    store: CountingStore, tmp_path: Path, demo_registry: Any
) -> None:
    publish(store, demo_registry.classifier_dir, version="1")
    clock = Clock()
    live = live_model(store, tmp_path, clock)
    in_flight = live.get()
    publish(store, demo_registry.classifier_dir, version="2")
    assert live.get() is in_flight  # still inside the window
    clock.now += 15
    new = live.get()
    assert new.identity.version == "2" and in_flight.identity.version == "1"
    assert in_flight.estimator is not new.estimator


def test_failed_load_keeps_the_old_model_and_retries_next_window(
    store: CountingStore, tmp_path: Path, demo_registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    publish(store, demo_registry.classifier_dir, version="1")
    clock = Clock()
    live = live_model(store, tmp_path, clock)
    live.get()
    # Point live.json at version 2 whose file is corrupted after staging.
    publish(store, demo_registry.classifier_dir, version="2")
    model_file = store.root / "models/demo-classifier/versions/2/model.skops"
    good = model_file.read_bytes()
    model_file.write_bytes(good + b"corrupt")
    clock.now += 15
    with caplog.at_level(logging.ERROR):
        assert live.get().identity.version == "1"
    assert "keeping version 1" in caplog.text and "checksum" in (live.last_error or "").lower()
    model_file.write_bytes(good)  # repaired: the next window picks it up
    clock.now += 15
    assert live.get().identity.version == "2"
    assert live.last_error is None


def test_broken_pointer_without_model_is_unavailable(store: CountingStore, tmp_path: Path) -> None:
    store.write_bytes(live_key("demo-classifier"), b"{not json")
    live = live_model(store, tmp_path, Clock())
    with pytest.raises(ModelUnavailableError, match="not valid JSON"):
        live.get()
    store.write_bytes(live_key("demo-classifier"), json.dumps({"name": "demo-classifier", "version": "1"}).encode())
    live.refresh(force=True)
    assert "checksums" in (live.last_error or "")
