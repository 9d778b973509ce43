"""API Gateway proxy events exactly as AWS delivers them (REST v1 and HTTP API v2)."""

from __future__ import annotations

import base64
from typing import Any


def rest_v1_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    stage: str = "prod",
    query: dict[str, str] | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "User-Agent": "curl/8.0", **(headers or {})}
    raw = body.encode() if isinstance(body, str) else body
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "res1",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1700000000000,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.0", "apiKey": None},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        "body": None if raw is None else (base64.b64encode(raw).decode() if binary else raw.decode()),
        "isBase64Encoded": binary,
    }


def http_v2_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    stage: str = "$default",
    query: str = "",
) -> dict[str, Any]:
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    raw = body.encode() if isinstance(body, str) else body
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.0",
            **{k.lower(): v for k, v in (headers or {}).items()},
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": stage,
            "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1700000000000,
        },
        "body": None if raw is None else raw.decode(),
        "isBase64Encoded": False,
    }


class FakeLambdaContext:
    function_name = "mlserve-api"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlserve-api:live"
    memory_limit_in_mb = 1024
    aws_request_id = "5a3b8f0e-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/mlserve-api"
    log_stream_name = "2026/11/25/[1]abcdef"
    client_context = None
    identity = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
