"""Smoke checks against a deployed mlserve API, through its real URL and API key.

Used by tests/smoke/test_deployed_smoke.py (GitHub deploy workflow, CDK Pipelines smoke step,
by hand) and by the MiniStack e2e suite (tests/e2e/test_smoke_checks.py). Where the API is:

  MLSERVE_SMOKE_STACK        CloudFormation stack (e.g. Mlserve-dev): ApiUrl and ApiKeyId come
                             from its outputs, the key's value from API Gateway
                             (get_api_key includeValue); needs AWS credentials
  MLSERVE_SMOKE_API_URL      or the API's base URL directly (CDK Pipelines passes the outputs)
  MLSERVE_SMOKE_API_KEY_ID   with it, the API key id (optional: no key = auth iam/none)
  MLSERVE_SMOKE_MODEL_NAME   the model the environment must serve (optional)
  MLSERVE_SMOKE_REQUIRED=1   a missing setting fails instead of skipping (CI deploy jobs)

boto3 honours AWS_ENDPOINT_URL, so the same code reads an emulator's stack.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
NOT_CONFIGURED = (
    "no deployed stack configured: set MLSERVE_SMOKE_STACK=<stack name> (with AWS credentials) "
    "or MLSERVE_SMOKE_API_URL to run the deployed smoke tests (docs/deploy.md)"
)


class NotConfigured(Exception):
    """The environment names no deployed API (or no credentials to find it)."""


@dataclass(frozen=True)
class SmokeTarget:
    api: str  # base URL without trailing slash
    api_key: str | None = None
    expected_model: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def headers(self, *, with_key: bool = True) -> dict[str, str]:
        headers = {"Content-Type": JSON, **self.extra_headers}
        if with_key and self.api_key:
            headers["x-api-key"] = self.api_key
        return headers


def target_from_environment(env: Mapping[str, str] | None = None, session: Any = None) -> SmokeTarget:
    """Raises NotConfigured (with the reason) when nothing names a deployed API."""
    env = os.environ if env is None else env
    expected = env.get("MLSERVE_SMOKE_MODEL_NAME") or None
    stack = env.get("MLSERVE_SMOKE_STACK", "").strip()
    api_url = env.get("MLSERVE_SMOKE_API_URL", "").strip()
    key_id = env.get("MLSERVE_SMOKE_API_KEY_ID", "").strip() or None
    if not stack and not api_url:
        raise NotConfigured(NOT_CONFIGURED)
    if stack:
        session = session or _session()
        if session.get_credentials() is None:
            raise NotConfigured(f"MLSERVE_SMOKE_STACK={stack} is set but no AWS credentials are configured")
        outputs = stack_outputs(session, stack)
        if "ApiUrl" not in outputs:
            raise AssertionError(f"stack {stack} has no ApiUrl output; outputs: {sorted(outputs)}")
        api_url, key_id = outputs["ApiUrl"], outputs.get("ApiKeyId") or key_id
    api_key = None
    if key_id is not None:
        session = session or _session()
        api_key = session.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]
    return SmokeTarget(api=api_url.rstrip("/"), api_key=api_key, expected_model=expected)


def stack_outputs(session: Any, stack: str) -> dict[str, str]:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def _session() -> Any:
    import boto3

    return boto3.Session()


def http(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# --- the checks (each raises AssertionError naming what is wrong) ---


def check_health(target: SmokeTarget) -> dict[str, Any]:
    """GET /health is 200 and names the live model; returns its identity."""
    status, body = http("GET", f"{target.api}/health", None, target.headers())
    assert status == 200, f"GET /health answered {status}: {body!r} (is a model published and live?)"
    assert isinstance(body, dict) and body.get("status") == "ok", body
    identity = body.get("model")
    assert isinstance(identity, dict) and identity.get("name") and identity.get("version"), body
    if target.expected_model is not None:
        assert identity["name"] == target.expected_model, (
            f"the API serves model {identity['name']!r}, this environment expects {target.expected_model!r}"
        )
    return identity


def check_predict(target: SmokeTarget, identity: Mapping[str, Any]) -> dict[str, Any]:
    """POST /predict with the live model's own logged input example: one prediction, named
    by the same model identity /health reported."""
    status, example = http("GET", f"{target.api}/ui/example", None, target.headers())
    assert status == 200 and isinstance(example, dict), f"GET /ui/example answered {status}: {example!r}"
    row = example.get("row")
    assert isinstance(row, dict) and row, f"the live model has no logged input example to smoke-test with: {example}"
    payload = json.dumps({"instances": [row]}).encode()
    status, body = http("POST", f"{target.api}/predict", payload, target.headers())
    assert status == 200, f"POST /predict answered {status}: {body!r}"
    assert isinstance(body, dict) and isinstance(body.get("predictions"), list), body
    assert len(body["predictions"]) == 1, body
    for key in ("name", "version", "run_id"):
        assert body["model"].get(key) == identity.get(key), (key, body["model"], dict(identity))
    return body


BAD_INPUTS: tuple[tuple[str, bytes, int], ...] = (
    ("malformed JSON", b"{not json", 400),
    ("empty instances", b'{"instances": []}', 422),
    ("unknown field", b'{"instances": [{"mlserve-smoke-no-such-column": 1}]}', 422),
)


def check_bad_input(target: SmokeTarget) -> None:
    """Bad requests get the API's 4xx JSON error format, never a 5xx."""
    for what, payload, expected in BAD_INPUTS:
        status, body = http("POST", f"{target.api}/predict", payload, target.headers())
        assert status == expected, f"{what}: expected {expected}, got {status}: {body!r}"
        assert isinstance(body, dict) and {"code", "message"} <= set(body.get("error", {})), (what, body)
        for detail in body["error"].get("details", []):
            assert {"loc", "msg"} <= set(detail), (what, detail)


def check_key_required(target: SmokeTarget) -> None:
    """With an API key configured, a request without it is refused by API Gateway (JSON 403)."""
    payload = json.dumps({"instances": []}).encode()
    status, body = http("POST", f"{target.api}/predict", payload, target.headers(with_key=False))
    assert status == 403, f"POST /predict without the API key answered {status}: {body!r}"
    assert isinstance(body, dict) and body.get("message"), body
