"""One small interface over the model store: S3 (boto3) or a local directory.

Layout (see design.md):
    models/<name>/versions/<version>/...   immutable copy of the MLflow model + checksums.json
    models/<name>/live.json                the live pointer
    models/<name>/deployments/<id>.json    one manifest per deploy attempt
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

from mlserve.aws_clients import LazyClient
from mlserve.checksums import CACHE_MARKER
from mlserve.errors import StoreError
from mlserve.safe_paths import check_model_name, check_version, contained_path

if TYPE_CHECKING:  # boto3-stubs (dev only): the runtime never imports them
    from mypy_boto3_s3 import S3Client


def version_prefix(name: str, version: str) -> str:
    return f"models/{check_model_name(name)}/versions/{check_version(version)}/"


def live_key(name: str) -> str:
    return f"models/{check_model_name(name)}/live.json"


def deployments_prefix(name: str) -> str:
    return f"models/{check_model_name(name)}/deployments/"


@dataclass(frozen=True)
class Fetched:
    """The result of a conditional read: `data` is None when the object is unchanged."""

    data: bytes | None
    etag: str | None


class ModelStore(ABC):
    """Keys are '/'-separated and relative to the store root."""

    uri: str

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Raise KeyError when the object does not exist."""

    @abstractmethod
    def read_if_changed(self, key: str, etag: str | None) -> Fetched:
        """Conditional GET: return data only if the object's ETag differs from `etag`.
        Raise KeyError when the object does not exist."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Write an object and return its ETag."""

    @abstractmethod
    def write_if(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Conditional write: only if the object's ETag is `if_match`, or (`if_none_match`)
        only if it does not exist. Raise WriteConflict otherwise; return the new ETag."""

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """All keys under `prefix`, sorted."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def download_prefix(self, prefix: str, dest: Path) -> Path:
        """Make the objects under `prefix` available as files in a local directory and
        return it (may be `dest`, or the store's own directory for a local store)."""

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to `length` bytes from offset `start`, without reading the rest of the object.
        Raise KeyError when the object does not exist."""
        return self.read_bytes(key)[start : start + length]

    def local_path(self, key: str) -> Path | None:
        """The object as a file on this machine (local stores), else None."""
        return None

    def presign_get(self, key: str, *, filename: str, content_type: str, expires_in: int) -> str | None:
        """A time-limited download URL for a browser (S3), or None where the store has none
        (local: the API serves the file itself)."""
        return None

    def keys_modified_since(self, prefix: str, since: datetime) -> Iterator[str]:
        """Keys under `prefix` written at or after `since`."""
        raise NotImplementedError

    def reconnected(self, s3_client: S3Client | None = None) -> ModelStore:
        """The same store with fresh clients (after a SnapStart restore); itself when it has none."""
        return self


class WriteConflict(StoreError):
    """A conditional write lost: the object changed (or appeared) since it was read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="write_conflict")


class LocalStore(ModelStore):
    """A directory on disk; the ETag is the content's md5, like S3's for simple PUTs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key escapes the store root: {key!r}")
        return path

    def local_path(self, key: str) -> Path:
        """Where `key` lives (or would live) on disk; refuses keys outside the root."""
        return self._path(key)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as handle:
                handle.seek(start)
                return handle.read(length)
        except FileNotFoundError:
            raise KeyError(key) from None

    def keys_modified_since(self, prefix: str, since: datetime) -> Iterator[str]:
        for key in self.list_keys(prefix):
            if datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC) >= since:
                yield key

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def read_if_changed(self, key: str, etag: str | None) -> Fetched:
        data = self.read_bytes(key)
        current = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if etag is not None and current == etag:
            return Fetched(None, etag)
        return Fetched(data, current)

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a reader never sees a half-written live.json.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def write_if(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        import fcntl

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time per key (processes too): compare, then write-then-rename.
        with open(path.parent / f".lock-{path.name}", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            except FileNotFoundError:
                current = None
            if if_none_match and current is not None:
                raise WriteConflict(f"{key} already exists")
            if if_match is not None and current != if_match:
                raise WriteConflict(f"{key} changed since it was read (ETag {current} != {if_match})")
            return self.write_bytes(key, data, content_type)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root.resolve()
        search_root = base if base.is_dir() else base.parent
        if not search_root.exists():
            return iter(())
        root = self.root.resolve()
        keys = sorted(
            p.relative_to(root).as_posix()
            for p in search_root.rglob("*")
            if p.is_file() and not p.name.startswith((".tmp-", ".lock-"))
        )
        return iter([k for k in keys if k.startswith(prefix)])

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def download_prefix(self, prefix: str, dest: Path) -> Path:
        # Files are already local: serve them in place, no copy.
        path = self._path(prefix)
        if not path.is_dir():
            raise KeyError(prefix)
        return path


class S3Store(ModelStore):
    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client

    client: LazyClient[S3Client] = LazyClient("s3")

    def _key(self, key: str) -> str:
        return self.prefix + key

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._call("read", key, self.client.get_object, Range=f"bytes={start}-{start + length - 1}")
        return bytes(response["Body"].read())

    def presign_get(self, key: str, *, filename: str, content_type: str, expires_in: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_in,
        )
        return url

    def keys_modified_since(self, prefix: str, since: datetime) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                if item["LastModified"] >= since:
                    yield str(item["Key"])[len(self.prefix) :]

    def reconnected(self, s3_client: S3Client | None = None) -> ModelStore:
        return open_store(self.uri, s3_client=s3_client)

    def _call(self, what: str, key: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return fn(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(key) from None
            if code in ("304", "NotModified"):
                raise
            raise StoreError(
                f"S3 {what} s3://{self.bucket}/{self._key(key)} failed: {code} {error.get('Message', '')}".strip()
            ) from exc

    def read_bytes(self, key: str) -> bytes:
        response = self._call("GetObject", key, self.client.get_object)
        return bytes(response["Body"].read())

    def read_if_changed(self, key: str, etag: str | None) -> Fetched:
        from botocore.exceptions import ClientError

        kwargs = {"IfNoneMatch": f'"{etag}"'} if etag else {}
        try:
            response = self._call("GetObject", key, self.client.get_object, **kwargs)
        except ClientError:  # only 304 Not Modified is re-raised by _call
            return Fetched(None, etag)
        return Fetched(bytes(response["Body"].read()), str(response["ETag"]).strip('"'))

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        extra = {"ContentType": content_type} if content_type else {}
        response = self._call("PutObject", key, self.client.put_object, Body=data, **extra)
        return str(response["ETag"]).strip('"')

    def write_if(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        from botocore.exceptions import ClientError

        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if if_match is not None:
            extra["IfMatch"] = f'"{if_match}"'
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise WriteConflict(f"s3://{self.bucket}/{self._key(key)} changed concurrently ({code})") from None
            if code in ("NoSuchKey", "404") and if_match is not None:
                raise WriteConflict(f"s3://{self.bucket}/{self._key(key)} was deleted since it was read") from None
            raise StoreError(f"S3 PutObject s3://{self.bucket}/{self._key(key)} failed: {code}") from exc
        return str(response["ETag"]).strip('"')

    def list_keys(self, prefix: str) -> Iterator[str]:
        from botocore.exceptions import ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            keys = [
                obj["Key"][len(self.prefix) :]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))
                for obj in page.get("Contents", [])
            ]
        except ClientError as exc:
            raise StoreError(f"S3 ListObjectsV2 s3://{self.bucket}/{self._key(prefix)} failed: {exc}") from exc
        return iter(sorted(keys))

    def exists(self, key: str) -> bool:
        try:
            self._call("HeadObject", key, self.client.head_object)
        except KeyError:
            return False
        return True

    def download_prefix(self, prefix: str, dest: Path) -> Path:
        keys = list(self.list_keys(prefix))
        if not keys:
            raise KeyError(prefix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".download-"))
        try:
            for key in keys:
                # A key like versions/1/../../../x must not write outside the download dir.
                target = contained_path(tmp, key[len(prefix) :], what=f"S3 key {key!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read_bytes(key))
            (tmp / CACHE_MARKER).write_text(self.uri + "/" + prefix)
            replace_cache_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


# CACHE_MARKER is written into every directory the model cache creates; only such
# directories are ever replaced or evicted, so a path built from data can never make us
# delete a foreign tree.


def is_cache_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / CACHE_MARKER).is_file()


def replace_cache_dir(fresh: Path, dest: Path) -> None:
    """Move the freshly downloaded `fresh` to `dest`. An existing `dest` is replaced only when
    the cache created it (it holds CACHE_MARKER); it is renamed aside to a name we generated
    first, and only that is deleted."""
    if dest.is_symlink() or (dest.exists() and not is_cache_dir(dest)):
        raise StoreError(f"refusing to replace {dest}: it was not created by the model cache")
    aside: Path | None = None
    if dest.exists():
        aside = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".evict-"))
        os.replace(dest, aside / "old")
    os.replace(fresh, dest)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def open_store(uri: str, s3_client: S3Client | None = None) -> ModelStore:
    """`s3://bucket/prefix`, `file:///abs/path`, or a plain filesystem path."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"store URI has no bucket: {uri!r}")
        return S3Store(parsed.netloc, parsed.path, client=s3_client)
    if parsed.scheme == "file":
        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return LocalStore(Path(uri))
    raise StoreError(f"unsupported store URI {uri!r}: use s3://bucket/prefix or file:///path")
