from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlserve.errors import StoreError
from mlserve.store import LocalStore, S3Store, live_key, open_store, version_prefix


def exercise(store: Any) -> None:
    etag = store.write_bytes("models/m/live.json", b'{"v": 1}')
    assert store.read_bytes("models/m/live.json") == b'{"v": 1}'
    assert store.exists("models/m/live.json")
    assert not store.exists("models/m/other.json")
    unchanged = store.read_if_changed("models/m/live.json", etag)
    assert unchanged.data is None and unchanged.etag == etag
    first = store.read_if_changed("models/m/live.json", None)
    assert first.data == b'{"v": 1}' and first.etag == etag
    new_etag = store.write_bytes("models/m/live.json", b'{"v": 2}')
    assert new_etag != etag
    changed = store.read_if_changed("models/m/live.json", etag)
    assert changed.data == b'{"v": 2}' and changed.etag == new_etag
    with pytest.raises(KeyError):
        store.read_bytes("models/m/missing.json")
    with pytest.raises(KeyError):
        store.read_if_changed("models/m/missing.json", None)
    store.write_bytes("models/m/versions/1/a.txt", b"a")
    store.write_bytes("models/m/versions/1/sub/b.txt", b"b")
    store.write_bytes("models/m2/versions/1/c.txt", b"c")
    assert list(store.list_keys("models/m/versions/1/")) == [
        "models/m/versions/1/a.txt",
        "models/m/versions/1/sub/b.txt",
    ]
    assert list(store.list_keys("models/nothing/")) == []


def test_local_store_contract(tmp_path: Path) -> None:
    exercise(LocalStore(tmp_path))


def test_s3_store_contract(s3: Any) -> None:
    exercise(open_store("s3://mlserve-models-test", s3_client=s3))


def test_s3_store_with_prefix_keeps_keys_relative(s3: Any) -> None:
    store = open_store("s3://mlserve-models-test/team-a/", s3_client=s3)
    store.write_bytes("models/m/live.json", b"{}")
    assert s3.get_object(Bucket="mlserve-models-test", Key="team-a/models/m/live.json")["Body"].read() == b"{}"
    assert list(store.list_keys("models/")) == ["models/m/live.json"]


def test_download_prefix_s3_copies_files(s3: Any, tmp_path: Path) -> None:
    store = open_store("s3://mlserve-models-test", s3_client=s3)
    store.write_bytes("models/m/versions/1/MLmodel", b"x")
    store.write_bytes("models/m/versions/1/dir/f.bin", b"y")
    local = store.download_prefix(version_prefix("m", "1"), tmp_path / "cache" / "m" / "1")
    assert (local / "MLmodel").read_bytes() == b"x"
    assert (local / "dir" / "f.bin").read_bytes() == b"y"
    with pytest.raises(KeyError):
        store.download_prefix(version_prefix("m", "9"), tmp_path / "cache" / "m" / "9")


def test_local_store_serves_in_place_and_refuses_escapes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("models/m/versions/1/MLmodel", b"x")
    assert (
        store.download_prefix("models/m/versions/1/", tmp_path / "unused")
        == (tmp_path / "models/m/versions/1").resolve()
    )
    with pytest.raises(StoreError):
        store.read_bytes("../outside")


def test_s3_errors_other_than_missing_are_store_errors(s3: Any) -> None:
    store = S3Store("bucket-that-does-not-exist", client=s3)
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.write_bytes("k", b"v")


def test_open_store_uris(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path.as_uri()), LocalStore)
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    s3_store = open_store("s3://bucket/prefix")
    assert isinstance(s3_store, S3Store) and s3_store.bucket == "bucket" and s3_store.prefix == "prefix/"
    with pytest.raises(StoreError, match="unsupported store URI"):
        open_store("gs://bucket")
    with pytest.raises(StoreError, match="no bucket"):
        open_store("s3:///x")
    assert live_key("m") == "models/m/live.json"
