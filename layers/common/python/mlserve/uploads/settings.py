"""Where browser uploads go: settings from MLSERVE_* variables, the auth mode, and the S3
client/endpoint the browser POSTs to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from mlserve.config import Settings, env_number
from mlserve.contract import RESULTS_PREFIX, Env

if TYPE_CHECKING:  # boto3-stubs (dev only)
    from mypy_boto3_s3 import S3Client

DEFAULT_UPLOAD_MAX_BYTES = 50 * 1024 * 1024


DEFAULT_URL_SECONDS = 900


# The presigned POST only has to outlive the browser starting its upload (S3 checks the
# policy's expiration when the POST arrives); a short life narrows the replay window, and the
# batch function scores one object per job id anyway (mlserve.batch.job.claim_job).
DEFAULT_POST_SECONDS = 120


AUTH_MODES = ("none", "api_key", "iam")


@dataclass(frozen=True)
class UploadSettings:
    """Where browser uploads go, read from MLSERVE_* environment variables."""

    store_uri: str
    batch_bucket: str | None
    results_prefix: str = RESULTS_PREFIX
    max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    url_seconds: int = DEFAULT_URL_SECONDS
    post_seconds: int = DEFAULT_POST_SECONDS

    @classmethod
    def from_env(cls, settings: Settings) -> UploadSettings:
        return cls(
            store_uri=settings.store_uri,
            batch_bucket=(os.environ.get(Env.BATCH_BUCKET) or "").strip() or None,
            results_prefix=settings.results_prefix,
            max_bytes=int(env_number(Env.UPLOAD_MAX_BYTES, DEFAULT_UPLOAD_MAX_BYTES, minimum=1)),
            url_seconds=int(env_number(Env.UPLOAD_URL_SECONDS, DEFAULT_URL_SECONDS, minimum=60)),
            post_seconds=int(env_number(Env.UPLOAD_POST_SECONDS, DEFAULT_POST_SECONDS, minimum=10)),
        )

    @property
    def local(self) -> bool:
        return self.batch_bucket is None or urlparse(self.store_uri).scheme in ("file", "")

    @property
    def local_root(self) -> Path:
        parsed = urlparse(self.store_uri)
        base = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(self.store_uri)
        return base / "batch"


def auth_mode() -> str:
    """How callers authenticate (set by the stack from the cdk.json `auth` context)."""
    mode = (os.environ.get(Env.AUTH) or "none").strip().lower().replace("-", "_")
    return mode if mode in AUTH_MODES else "none"


def results_prefix(settings: UploadSettings) -> str:
    prefix = settings.results_prefix
    return prefix if prefix.endswith("/") else prefix + "/"


def s3_client() -> S3Client:
    import boto3
    from botocore.config import Config

    # SigV4 and, on AWS, the regional virtual-hosted endpoint: what browsers can POST to with
    # CORS (the global endpoint answers other regions with a redirect, which CORS refuses).
    # An emulator endpoint (AWS_ENDPOINT_URL[_S3], e.g. LocalStack) keeps path-style URLs.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if s3_endpoint() else "virtual"})
    endpoint = None if s3_endpoint() or not region else regional_s3_endpoint(region)
    return boto3.client("s3", region_name=region, config=config, endpoint_url=endpoint)


def regional_s3_endpoint(region: str) -> str:
    """Always the regional endpoint (us-east-1 too), so upload URLs are
    `https://<bucket>.s3.<region>.amazonaws.com/` - the origin the page's CSP names."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


def upload_origin() -> str | None:
    """The origin browsers POST uploads to: `MLSERVE_UPLOAD_ORIGIN` (set by the stack from
    the bucket's regional domain name), else derived from the bucket and region."""
    explicit = (os.environ.get(Env.UPLOAD_ORIGIN) or "").strip().rstrip("/")
    if explicit:
        return explicit
    bucket = (os.environ.get(Env.BATCH_BUCKET) or "").strip()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not bucket or not region or s3_endpoint():
        return None
    return "https://" + bucket + "." + regional_s3_endpoint(region).removeprefix("https://")


def s3_endpoint() -> str | None:
    """The S3 endpoint override boto3 honours (emulators), or None on AWS."""
    return (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "").strip() or None
