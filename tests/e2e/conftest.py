"""Deployed end-to-end fixtures: an AWS-compatible endpoint (MiniStack or LocalStack), the
real CDK app deployed to it with ``cdklocal``, and clients pointed at it.

Environment:
  MLSERVE_E2E_ENDPOINT     http://127.0.0.1:<port> of the emulator (required; the suite is
                           skipped with the reason when it is unset or not answering)
  MLSERVE_E2E_CDK_CONTEXT  extra ``-c key=value`` words for synth/deploy (tests/e2e/run.sh
                           fills in the host architecture / Python for MiniStack)
  MLSERVE_E2E_DEPLOY       1 (default): bootstrap + deploy before, destroy after;
                           0: use an already deployed stack (faster iteration)
  MLSERVE_E2E_STACK        stack name (default Mlserve)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = os.environ.get("MLSERVE_E2E_STACK", "Mlserve")
ACCOUNT = "000000000000"
REGION = "us-east-1"
DEPLOY_TIMEOUT = int(os.environ.get("MLSERVE_E2E_DEPLOY_TIMEOUT", "1200"))
_EXECUTE_API = re.compile(r"^https?://(?P<api>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[^/]+)/?")


def endpoint_or_skip() -> str:
    endpoint = os.environ.get("MLSERVE_E2E_ENDPOINT", "").rstrip("/")
    if not endpoint:
        pytest.skip("MLSERVE_E2E_ENDPOINT is not set: run `make e2e` (MiniStack) or point it at LocalStack")
    for path in ("/_ministack/health", "/_localstack/health"):
        try:
            with urllib.request.urlopen(endpoint + path, timeout=5) as response:
                if response.status == 200:
                    return endpoint
        except (urllib.error.URLError, OSError):
            continue
    pytest.skip(f"MLSERVE_E2E_ENDPOINT={endpoint} is not answering (no /_ministack/health or /_localstack/health)")


def emulator_env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
    )
    return env


def cdklocal(args: list[str], endpoint: str) -> None:
    command = [str(REPO / "node_modules" / ".bin" / "cdklocal"), *args]
    result = subprocess.run(
        command, cwd=REPO, env=emulator_env(endpoint), capture_output=True, text=True, timeout=DEPLOY_TIMEOUT
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )


def api_base(endpoint: str, api_url: str) -> str:
    """The emulator's URL for a deployed REST API stage: the CloudFormation output names AWS's
    host (https://<id>.execute-api.<region>.amazonaws.com/<stage>/), which only resolves in AWS.
    Both MiniStack and LocalStack serve ``<endpoint>/_aws/execute-api/<id>/<stage>/``."""
    match = _EXECUTE_API.match(api_url)
    if not match:
        raise ValueError(f"not an API Gateway URL: {api_url}")
    return f"{endpoint}/_aws/execute-api/{match['api']}/{match['stage']}"


def find_output(outputs: dict[str, str], *needles: str) -> str:
    for key, value in outputs.items():
        if all(needle.lower() in key.lower() for needle in needles):
            return value
    raise KeyError(f"no stack output matching {needles}; outputs: {sorted(outputs)}")


@dataclass
class Deployed:
    endpoint: str
    outputs: dict[str, str]
    api: str  # base URL, no trailing slash
    session: Any  # boto3.Session pointed at the emulator

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint, region_name=REGION)

    @property
    def model_bucket(self) -> str:
        return find_output(self.outputs, "model", "bucket")

    @property
    def batch_bucket(self) -> str:
        return find_output(self.outputs, "batch", "bucket")

    @property
    def event_bus(self) -> str:
        return find_output(self.outputs, "bus")

    @property
    def api_key(self) -> str | None:
        """The usage plan's API key value (auth=api_key, the default), or None (iam/none)."""
        key_id = next((value for key, value in self.outputs.items() if key.lower().endswith("apikeyid")), None)
        if key_id is None:
            return None
        return str(self.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


@pytest.fixture(scope="session")
def deployed() -> Iterator[Deployed]:
    endpoint = endpoint_or_skip()
    import boto3

    deploy = os.environ.get("MLSERVE_E2E_DEPLOY", "1") != "0"
    context = shlex.split(os.environ.get("MLSERVE_E2E_CDK_CONTEXT", ""))
    if deploy:
        cdklocal(["bootstrap", f"aws://{ACCOUNT}/{REGION}"], endpoint)
        cdklocal(["deploy", STACK, "--require-approval", "never", *context], endpoint)
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    stacks = session.client("cloudformation", endpoint_url=endpoint).describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    deployed = Deployed(endpoint, outputs, api_base(endpoint, find_output(outputs, "api", "url")), session)
    # Every API call of the suite sends the key, as a client of the default stack must.
    API_KEY_HEADER.clear()
    key = deployed.api_key
    if key is not None:
        API_KEY_HEADER["x-api-key"] = key
    try:
        yield deployed
    finally:
        API_KEY_HEADER.clear()
        if deploy and os.environ.get("MLSERVE_E2E_KEEP") != "1":
            _empty_buckets(session, endpoint, outputs)
            cdklocal(["destroy", STACK, "--force", *context], endpoint)


def _empty_buckets(session: Any, endpoint: str, outputs: dict[str, str]) -> None:
    """Empty every bucket of the stack before destroy, and make sure each carries the
    ``aws-cdk:auto-delete-objects`` tag: MiniStack does not keep the tags CloudFormation
    set, so CDK's auto-delete custom resource fails with NoSuchTagSet on delete and the
    stack ends DELETE_FAILED (see docs/e2e.md). Best effort."""
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    buckets = {value for key, value in outputs.items() if "bucket" in key.lower()}
    try:
        paginator = cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=STACK):
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == "AWS::S3::Bucket" and resource.get("PhysicalResourceId"):
                    buckets.add(resource["PhysicalResourceId"])
    except Exception as exc:
        print(f"could not list the stack's buckets: {exc}")
    s3 = session.resource("s3", endpoint_url=endpoint)
    for name in sorted(buckets):
        try:
            s3.Bucket(name).object_versions.delete()
            s3.Bucket(name).objects.delete()
            s3.meta.client.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": "aws-cdk:auto-delete-objects", "Value": "true"}]}
            )
        except Exception as exc:
            print(f"could not empty {name}: {exc}")


# {"x-api-key": <value>} while a stack deployed with auth=api_key is under test (set by the
# `deployed` fixture), so every `http()` call authenticates like a real client.
API_KEY_HEADER: dict[str, str] = {}


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    *,
    api_key: bool = True,
) -> tuple[int, Any]:
    """One request; ``api_key=False`` sends none (to check the gateway refuses it)."""
    headers = {"Content-Type": content_type, **(API_KEY_HEADER if api_key else {})}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
