"""Where predictions go: an object appears only when complete, or not at all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from mlserve.batch.local_files import create_beside

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_BYTES = 8 * 1024 * 1024


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class LocalFileSink:
    """Temp file in the target directory, renamed over the target on commit (atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = create_beside(path)
        self._file = os.fdopen(fd, "wb", buffering=1024 * 1024)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def append_file(self, path: Path) -> None:
        """Append a whole file's bytes (a part written by another process), copied inside the
        kernel where the OS can (copy_file_range), else through a buffer."""
        self._file.flush()
        with open(path, "rb") as part:
            left = os.fstat(part.fileno()).st_size
            copy_range = getattr(os, "copy_file_range", None)
            if copy_range is not None:
                try:
                    while left > 0:
                        copied = copy_range(part.fileno(), self._file.fileno(), min(left, 1 << 30))
                        if copied == 0:
                            break
                        left -= copied
                except OSError:
                    pass  # e.g. a filesystem without it: finish through a buffer from where it stopped
            if left > 0:
                part.seek(os.fstat(part.fileno()).st_size - left)
                while block := part.read(8 * 1024 * 1024):
                    self._file.write(block)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class S3MultipartSink:
    """Buffers parts of `part_bytes` and uploads them as a multipart upload; an output
    smaller than one part is a single PutObject. Nothing is visible before `commit`."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        part_bytes: int = DEFAULT_PART_BYTES,
        content_type: str = "text/csv; charset=utf-8",
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)
        self.content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.part_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()

    def commit(self) -> None:
        if self._upload_id is None:
            self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self.content_type
            )
            self._buffer.clear()
            return
        if self._buffer:
            self._flush()
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
