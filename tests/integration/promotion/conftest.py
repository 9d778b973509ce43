"""Promotion fixtures: a real `mlflow server` (sqlite, --serve-artifacts) in a subprocess,
moto AWS (S3 model bucket, EventBridge bus + rule -> SQS stand-in for the redeploy
target, Secrets Manager, DynamoDB deliveries table), and a local HTTP receiver that hands
API-Gateway-shaped events to `lambda_promote.webhook.handler`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.local_servers import start_mlflow_server, stop_server

MODEL_BUCKET = "mlserve-models-test"  # the top-level `s3` fixture's bucket
MODEL = "demo-classifier"
BUS = "mlserve-test-bus"
SECRET_NAME = "mlserve/webhook-test"
WEBHOOK_SECRET = "s3cr3t-webhook-key"
TABLE = "mlserve-webhook-deliveries-test"


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    versions: dict[str, str] = field(default_factory=dict)  # label -> version

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server + registry with demo-classifier versions:
    v1 (C=1.0), v2 (C=0.3), v3 (C=0.1); no alias set yet."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow-server")
    process, url, log = start_mlflow_server(root)
    previous_uri = mlflow.get_tracking_uri()
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        from examples.train import train_classifier

        os.environ["MLFLOW_TRACKING_URI"] = url
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("mlserve-promotion-tests")  # server default: mlflow-artifacts:/ (proxied)
        server = MlflowServer(url, process, log)
        for label, c in (("v1", 1.0), ("v2", 0.3), ("v3", 0.1)):
            server.versions[label] = train_classifier(alias=None, c=c).version
        yield server
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
        stop_server(process)


@dataclass
class Aws:
    s3: Any
    events: Any
    sqs: Any
    queue_url: str
    outcomes_queue_url: str

    def drain(self, queue_url: str | None = None, wait: float = 0.0) -> list[dict[str, Any]]:
        """Receive every message waiting in the rule's target queue (bounded)."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while True:
            got = self.sqs.receive_message(QueueUrl=queue_url or self.queue_url, MaxNumberOfMessages=10)
            for message in got.get("Messages", []):
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url or self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if got.get("Messages"):
                continue
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(0.05)


@pytest.fixture
def aws(s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    """moto (in-process, shared by threads): the `s3` fixture's mock plus a bus whose
    promotion rule targets an SQS queue standing in for the redeploy Lambda."""
    import boto3

    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="redeploy-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    outcomes_url = sqs.create_queue(QueueName="outcomes")["QueueUrl"]
    outcomes_arn = sqs.get_queue_attributes(QueueUrl=outcomes_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    from mlserve.promotion.events import promoted_pattern, sagemaker_pattern

    events.put_rule(Name="promoted", EventBusName=BUS, EventPattern=json.dumps(promoted_pattern()))
    events.put_targets(Rule="promoted", EventBusName=BUS, Targets=[{"Id": "redeploy", "Arn": queue_arn}])
    events.put_rule(
        Name="sagemaker", EventBusName=BUS, EventPattern=json.dumps(sagemaker_pattern("mlserve-demo-group"))
    )
    events.put_targets(Rule="sagemaker", EventBusName=BUS, Targets=[{"Id": "redeploy", "Arn": queue_arn}])
    events.put_rule(
        Name="outcomes",
        EventBusName=BUS,
        EventPattern=json.dumps(
            {"source": ["mlserve.registry"], "detail-type": ["ModelDeployed", "ModelDeploymentFailed"]}
        ),
    )
    events.put_targets(Rule="outcomes", EventBusName=BUS, Targets=[{"Id": "outcomes", "Arn": outcomes_arn}])
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=SECRET_NAME, SecretString=WEBHOOK_SECRET)
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "delivery_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "delivery_id", "KeyType": "HASH"}],
    )
    for key, value in {
        "MLSERVE_STORE": f"s3://{MODEL_BUCKET}",
        "MLSERVE_MODEL_NAME": MODEL,
        "MLSERVE_EVENT_BUS": BUS,
        "MLSERVE_WEBHOOK_SECRET_ID": SECRET_NAME,
        "MLSERVE_WEBHOOK_DELIVERIES_TABLE": TABLE,
        "MLSERVE_REGISTRY_ALIAS": "champion",
        "MLSERVE_REFRESH_SECONDS": "0",
        "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(key, value)
    import lambda_promote.redeploy
    import lambda_promote.webhook

    lambda_promote.webhook.reset()
    lambda_promote.redeploy.reset()
    yield Aws(s3, events, sqs, queue_url, outcomes_url)
    lambda_promote.webhook.reset()
    lambda_promote.redeploy.reset()


def api_gateway_event(method: str, path: str, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "test",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


@dataclass
class Receiver:
    url: str
    responses: list[tuple[int, dict[str, Any]]]


@pytest.fixture
def receiver(aws: Aws) -> Iterator[Receiver]:
    """POST /registry/events on a local port -> lambda_promote.webhook.handler."""
    from lambda_promote.webhook import handler

    responses: list[tuple[int, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            result = handler(api_gateway_event("POST", self.path, dict(self.headers.items()), body))
            responses.append((result["statusCode"], json.loads(result["body"])))
            payload = result["body"].encode()
            self.send_response(result["statusCode"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/registry/events", responses)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def api_predict(rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request through lambda_api.handler.handler (the Mangum entry point)."""
    from lambda_api.handler import handler

    event = api_gateway_event("POST", "/predict", {"content-type": "application/json"}, json.dumps({"instances": rows}))
    result = handler(event, None)  # type: ignore[arg-type]
    return result["statusCode"], json.loads(result["body"]), {k.lower(): v for k, v in result["headers"].items()}


@pytest.fixture
def api(aws: Aws) -> Iterator[Any]:
    """The module-level API app, rebuilt from this test's environment."""
    import lambda_api.app

    lambda_api.app.app.state.runtime._built = None
    yield api_predict
    lambda_api.app.app.state.runtime._built = None
