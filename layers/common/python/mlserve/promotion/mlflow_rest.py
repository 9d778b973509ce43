"""The MLflow registry and artifact store over plain REST (urllib; no mlflow import).

Endpoints (MLflow REST API 2.0):
    GET  /api/2.0/mlflow/registered-models/alias?name=&alias=     -> {"model_version": {...}}
    GET  /api/2.0/mlflow/model-versions/get?name=&version=         -> {"model_version": {...}}
    GET  /api/2.0/mlflow/model-versions/get-download-uri?name=&version= -> {"artifact_uri": ...}
    POST /api/2.0/mlflow/registered-models/get-latest-versions     -> {"model_versions": [...]}
    GET  /api/2.0/mlflow-artifacts/artifacts?path=                 -> {"files": [{path, is_dir, file_size}]}
    GET  /api/2.0/mlflow-artifacts/artifacts/<path>                -> the file (server with --serve-artifacts)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlserve.contract import Env
from mlserve.errors import MlserveError
from mlserve.safe_paths import UnsafePathError, contained_path

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


class RegistryError(MlserveError):
    """The registry answered with an error. `transient` errors are worth a retry."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message, code="registry_error")
        self.status = status
        self.transient = transient


@dataclass
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str | None
    current_stage: str | None
    aliases: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionInfo:
        return cls(
            name=str(data.get("name")),
            version=str(data.get("version")),
            run_id=data.get("run_id") or None,
            source=data.get("source") or None,
            current_stage=data.get("current_stage") or None,
            aliases=list(data.get("aliases") or []),
            tags={str(t.get("key")): str(t.get("value")) for t in data.get("tags") or [] if isinstance(t, dict)},
        )


TOKEN_SECRET_ENV = Env.MLFLOW_TOKEN_SECRET_ARN


def token_from_secret(secret_id: str, client: Any = None) -> str:
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    raw = str(client.get_secret_value(SecretId=secret_id)["SecretString"])
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return raw.strip()
    if isinstance(parsed, dict) and parsed.get("token"):
        return str(parsed["token"])
    raise RegistryError(f"secret {secret_id} holds JSON without a 'token' key")


class MlflowRest:
    """A tiny MLflow REST client. Auth: bearer token, or basic user/password."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not tracking_uri.startswith(("http://", "https://")):
            raise RegistryError(f"the registry must be an MLflow server URL (http[s]://), got {tracking_uri!r}")
        self.base = tracking_uri.rstrip("/")
        self.timeout = timeout
        self._auth: str | None = None
        if token:
            self._auth = f"Bearer {token}"
        elif username and password:
            self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    @classmethod
    def from_env(cls, tracking_uri: str, secrets_client: Any = None) -> MlflowRest:
        """Auth from MLSERVE_MLFLOW_TOKEN_SECRET_ARN (Secrets Manager: the token, or JSON
        {"token": ...}; what deployed functions use, context mlflow_token_secret_arn), else
        the MLflow client's own variables (local runs)."""
        secret_arn = os.environ.get(TOKEN_SECRET_ENV)
        if secret_arn:
            return cls(tracking_uri, token=token_from_secret(secret_arn, secrets_client))
        return cls(
            tracking_uri,
            token=os.environ.get("MLFLOW_TRACKING_TOKEN"),
            username=os.environ.get("MLFLOW_TRACKING_USERNAME"),
            password=os.environ.get("MLFLOW_TRACKING_PASSWORD"),
        )

    def _request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> bytes:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s) only, checked in __init__
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise RegistryError(
                f"{method} {path} -> HTTP {exc.code}: {detail}",
                status=exc.code,
                transient=exc.code >= 500 or exc.code == 429,
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise RegistryError(f"{method} {url} failed: {exc}", transient=True) from None

    def _json(
        self, method: str, path: str, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        raw = self._request(method, path, params, body)
        try:
            result = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            raise RegistryError(f"{method} {path}: the registry did not answer JSON") from None
        return result if isinstance(result, dict) else {}

    # -- registry -----------------------------------------------------------------------
    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        try:
            data = self._json("GET", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias})
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return VersionInfo.from_json(data["model_version"])

    def get_version(self, name: str, version: str) -> VersionInfo:
        data = self._json("GET", "/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        return VersionInfo.from_json(data["model_version"])

    def download_uri(self, name: str, version: str) -> str:
        data = self._json("GET", "/api/2.0/mlflow/model-versions/get-download-uri", {"name": name, "version": version})
        return str(data["artifact_uri"])

    def latest_in_stage(self, name: str, stage: str) -> VersionInfo | None:
        data = self._json(
            "POST", "/api/2.0/mlflow/registered-models/get-latest-versions", body={"name": name, "stages": [stage]}
        )
        versions = [VersionInfo.from_json(v) for v in data.get("model_versions") or []]
        return max(versions, key=lambda v: int(v.version)) if versions else None

    # -- artifacts (mlflow server --serve-artifacts) ---------------------------------------
    def list_artifacts(self, path: str) -> list[dict[str, Any]]:
        data = self._json("GET", ARTIFACTS_API, {"path": path})
        return list(data.get("files") or [])

    def download_artifacts(self, path: str, dest: Path) -> Path:
        """Recursively download the proxied artifact directory `path` into `dest`."""
        path = path.strip("/")
        files = self.list_artifacts(path)
        if not files:
            raise RegistryError(f"no artifacts under mlflow-artifacts:/{path}", status=404)
        dest.mkdir(parents=True, exist_ok=True)
        for info in files:
            rel = str(info["path"]).strip("/")
            name = PurePosixPath(rel).name
            if name in ("", ".", "..") or "/" in name:
                raise RegistryError(f"unsafe artifact path {rel!r}")
            child = f"{path}/{name}"
            if info.get("is_dir"):
                self.download_artifacts(child, dest / name)
            else:
                quoted = urllib.parse.quote(child)
                (dest / name).write_bytes(self._request("GET", f"{ARTIFACTS_API}/{quoted}"))
        return dest


def download_model(artifact_uri: str, dest: Path, *, rest: MlflowRest | None, s3_client: Any = None) -> Path:
    """Fetch an MLflow model directory from wherever the registry keeps it.

    mlflow-artifacts:/…, http(s)://…/api/2.0/mlflow-artifacts/artifacts/…  (proxied by the server)
    s3://bucket/prefix[/model.tar.gz]                                       (direct S3 copy)
    file:///…                                                               (local registries)
    """
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme == "mlflow-artifacts":
        if rest is None:
            raise RegistryError("an mlflow-artifacts:/ URI needs the registry URL")
        path = parsed.path
        if parsed.netloc:  # mlflow-artifacts://host:port/path: use that server
            rest = MlflowRest(f"http://{parsed.netloc}")
        return rest.download_artifacts(path, dest)
    if parsed.scheme in ("http", "https"):
        anchor = parsed.path.find(ARTIFACTS_API)
        if anchor < 0:
            raise RegistryError(f"unsupported artifact URL {artifact_uri!r}")
        server = MlflowRest(f"{parsed.scheme}://{parsed.netloc}{parsed.path[:anchor]}")
        if rest is not None and server.base == rest.base:
            server = rest
        return server.download_artifacts(parsed.path[anchor + len(ARTIFACTS_API) :], dest)
    if parsed.scheme == "s3":
        return _download_s3(parsed.netloc, parsed.path.lstrip("/"), dest, s3_client)
    if parsed.scheme == "file":
        src = Path(urllib.parse.unquote(parsed.path))
        if not src.is_dir():
            raise RegistryError(f"{artifact_uri} is not a directory", status=404)
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return dest
    raise RegistryError(f"unsupported artifact URI scheme in {artifact_uri!r}")


def _download_s3(bucket: str, key: str, dest: Path, client: Any) -> Path:
    if client is None:
        import boto3

        client = boto3.client("s3")
    dest.mkdir(parents=True, exist_ok=True)
    if key.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "model.tar.gz"
            client.download_file(bucket, key, str(archive))
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
        # a tarball may hold the model directory itself or its contents
        if not (dest / "MLmodel").exists():
            inner = [p.parent for p in dest.rglob("MLmodel")]
            if len(inner) == 1:
                return inner[0]
        return dest
    prefix = key.rstrip("/") + "/"
    paginator = client.get_paginator("list_objects_v2")
    count = 0
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :]
            if not rel or rel.endswith("/"):
                continue
            try:
                target = contained_path(dest, rel, what=f"S3 key {obj['Key']!r}")
            except UnsafePathError as exc:
                raise RegistryError(f"unsafe S3 key: {exc}") from None
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))
            count += 1
    if not count:
        raise RegistryError(f"no objects under s3://{bucket}/{prefix}", status=404)
    return dest
