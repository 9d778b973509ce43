"""Promotion -> first API response from the new version, measured locally.

A real `mlflow server` (sqlite, --serve-artifacts) signs a webhook to the receiver
(lambda_promote.webhook.handler behind a local HTTP port); the event goes through moto
EventBridge to an SQS queue that a worker drains into lambda_promote.redeploy.handler
(standing in for the Lambda target); a client polls lambda_api.handler.handler.

    .venv/bin/python -m benchmarks.promotion [--runs 5] [--refresh-seconds 1]

Prints one line per run and a summary; writes
benchmarks/results/promotion-<date>-refresh<R>s.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.local_servers import start_mlflow_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
MODEL = "demo-classifier"
BUS = "mlserve-bench"
SECRET = "bench-webhook-secret"


def setup_aws(tmp: Path, registry: str, refresh: float) -> tuple[Any, Any, str]:
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLSERVE_STORE": "s3://mlserve-bench-models",
        "MLSERVE_MODEL_NAME": MODEL,
        "MLSERVE_EVENT_BUS": BUS,
        "MLSERVE_WEBHOOK_SECRET_ID": "bench/webhook",
        "MLSERVE_WEBHOOK_DELIVERIES_TABLE": "bench-deliveries",
        "MLSERVE_MLFLOW_TRACKING_URI": registry,
        "MLSERVE_REFRESH_SECONDS": str(refresh),
        "MLSERVE_CACHE_DIR": str(tmp / "cache"),
    }.items():
        os.environ[key] = value
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    boto3.client("s3").create_bucket(Bucket="mlserve-bench-models")
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="redeploy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    from mlserve.promotion.events import promoted_pattern

    events.put_rule(Name="promoted", EventBusName=BUS, EventPattern=json.dumps(promoted_pattern()))
    events.put_targets(Rule="promoted", EventBusName=BUS, Targets=[{"Id": "redeploy", "Arn": arn}])
    boto3.client("secretsmanager").create_secret(Name="bench/webhook", SecretString=SECRET)
    boto3.client("dynamodb").create_table(
        TableName="bench-deliveries",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "delivery_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "delivery_id", "KeyType": "HASH"}],
    )
    return events, sqs, queue_url


def proxy_event(path: str, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
        "queryStringParameters": None,
        "multiValueHeaders": {},
        "requestContext": {
            "resourcePath": path,
            "httpMethod": "POST",
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refresh-seconds", type=float, default=1.0, help="MLSERVE_REFRESH_SECONDS of the API")
    parser.add_argument("--poll-seconds", type=float, default=0.02, help="client request interval")
    args = parser.parse_args()

    from moto import mock_aws

    tmp = Path(tempfile.mkdtemp(prefix="mlserve-bench-promotion-"))
    server, url, _ = start_mlflow_server(tmp)
    marks: dict[str, float] = {}
    try:
        with mock_aws():
            _events, sqs, queue_url = setup_aws(tmp, url, args.refresh_seconds)
            import mlflow
            from mlflow import MlflowClient

            from examples.train import train_classifier

            mlflow.set_tracking_uri(url)
            mlflow.set_experiment("bench")
            versions = [train_classifier(alias=None, c=c).version for c in (1.0, 0.3)]
            client = MlflowClient(tracking_uri=url)

            from lambda_api.handler import handler as api_handler
            from lambda_promote.redeploy import handler as redeploy_handler
            from lambda_promote.webhook import handler as webhook_handler

            class Receiver(BaseHTTPRequestHandler):
                def do_POST(self) -> None:
                    marks["webhook"] = time.perf_counter()
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                    result = webhook_handler(proxy_event("/registry/events", dict(self.headers.items()), body))
                    payload = result["body"].encode()
                    self.send_response(result["statusCode"])
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

                def log_message(self, format: str, *a: Any) -> None:
                    pass

            receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
            threading.Thread(target=receiver.serve_forever, daemon=True).start()
            client.create_webhook(
                name="bench",
                url=f"http://127.0.0.1:{receiver.server_address[1]}/registry/events",
                events=["model_version_alias.created"],
                secret=SECRET,
            )

            stop = threading.Event()

            def worker() -> None:
                while not stop.is_set():
                    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
                    for message in got.get("Messages", []):
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                        marks["redeploy_start"] = time.perf_counter()
                        redeploy_handler(json.loads(message["Body"]), None)
                        marks["redeploy_end"] = time.perf_counter()
                    if not got.get("Messages"):
                        time.sleep(0.01)

            threading.Thread(target=worker, daemon=True).start()
            from examples.train import breast_cancer_frame

            body = json.dumps({"instances": breast_cancer_frame()[0].head(1).to_dict(orient="records")})

            def served_version() -> str | None:
                result = api_handler(proxy_event("/predict", {"content-type": "application/json"}, body), None)  # type: ignore[arg-type]
                return (
                    json.loads(result["body"]).get("model", {}).get("version") if result["statusCode"] == 200 else None
                )

            def promote(version: str, timeout: float = 60.0) -> dict[str, float]:
                marks.clear()
                t0 = time.perf_counter()
                client.set_registered_model_alias(MODEL, "champion", version)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if served_version() == version:
                        t1 = time.perf_counter()
                        return {"total_s": t1 - t0, **{f"{k}_s": v - t0 for k, v in marks.items()}}
                    time.sleep(args.poll_seconds)
                raise SystemExit(f"version {version} not served within {timeout}s")

            promote(versions[0])  # initial deployment (cold: first download and load)
            runs = []
            nan = float("nan")
            for index in range(args.runs):
                result = promote(versions[(index + 1) % 2])
                runs.append(result)
                print(
                    f"run {index + 1}: promotion -> first new-version response {result['total_s']:.3f}s "
                    f"(webhook {result.get('webhook_s', nan):.3f}s, redeploy "
                    f"{result.get('redeploy_start_s', nan):.3f}-{result.get('redeploy_end_s', nan):.3f}s)"
                )
            stop.set()
            receiver.shutdown()
            totals = [r["total_s"] for r in runs]
            summary = {
                "runs": runs,
                "median_s": statistics.median(totals),
                "max_s": max(totals),
                "min_s": min(totals),
                "refresh_seconds": args.refresh_seconds,
                "note": "local: real mlflow server + webhook, moto EventBridge/S3, in-process handlers",
            }
            print(
                f"promotion -> new version: median {summary['median_s']:.3f}s, min {summary['min_s']:.3f}s, "
                f"max {summary['max_s']:.3f}s (MLSERVE_REFRESH_SECONDS={args.refresh_seconds})"
            )
            out = ROOT / "benchmarks" / "results"
            out.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%d")
            (out / f"promotion-{stamp}-refresh{args.refresh_seconds:g}s.json").write_text(json.dumps(summary, indent=2))
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
