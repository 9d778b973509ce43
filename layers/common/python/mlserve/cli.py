"""`mlserve` command line: publish a model into a store, serve it locally, score CSV files."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlserve.contract import Env
from mlserve.errors import MlserveError

if TYPE_CHECKING:
    from mlserve.promotion.redeploy import Redeployer

# `mlserve serve` runs the API's app factory (it takes the settings; nothing edits os.environ).
API_APP_FACTORY = "lambda_api.app:create_app"


def _publish(args: argparse.Namespace) -> int:
    from mlserve.cli_errors import require_tracking_uri

    tracking_uri = _tracking_uri(args)
    require_tracking_uri(args.model_uri, tracking_uri)
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    from mlserve.registry import publish_model_uri

    resolved, result = publish_model_uri(
        args.model_uri,
        args.store,
        name=args.name,
        version=args.version,
        promoted_by=args.promoted_by,
        allow_pickle=args.allow_pickle,
        force=args.force,
        reference=args.reference,
    )
    print(
        json.dumps(
            {
                "live": result.pointer["version"],
                "name": resolved.name,
                "manifest": result.manifest_key,
                "smoke_predictions": result.smoke_predictions[:3],
            },
            default=str,
        )
    )
    return 0


def _tracking_uri(args: argparse.Namespace) -> str | None:
    return args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")


def _set_in_registry(args: argparse.Namespace, version: str) -> None:
    """Move the alias (or the legacy stage) in MLflow; the CLI is registry-side, so mlflow is fine."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=_tracking_uri(args))
    if args.stage:
        client.transition_model_version_stage(args.name, version, "Production", archive_existing_versions=True)
    else:
        client.set_registered_model_alias(args.name, args.alias, version)


def _promote(args: argparse.Namespace) -> int:
    from mlserve.contract import MODEL_PROMOTED, MODEL_PROMOTION_FORCED
    from mlserve.promotion.events import ModelPromoted, put_event

    tracking_uri = _tracking_uri(args)
    if not args.no_registry:
        if not tracking_uri:
            from mlserve.cli_errors import demo_tracking_uri

            print(
                "mlserve promote: error: set --tracking-uri or MLFLOW_TRACKING_URI (or --no-registry), "
                f"e.g. the demo's {demo_tracking_uri()}",
                file=sys.stderr,
            )
            return 2
        _set_in_registry(args, args.version)
    promotion = ModelPromoted(
        model_name=args.name,
        version=args.version,
        source="mlflow-stage" if args.stage else "cli",
        registry_uri=tracking_uri,
        artifact_uri=args.artifact_uri,
        requested_by=args.requested_by,
        force=args.force,
        alias=None if args.stage else args.alias,
        stage="Production" if args.stage else None,
    )
    result: dict[str, object] = {"promotion": promotion.to_detail()}
    if args.bus:
        import boto3

        # force is honoured only on the ModelPromotionForced detail-type (force_promoters only)
        detail_type = MODEL_PROMOTION_FORCED if args.force else MODEL_PROMOTED
        result["event_id"] = put_event(boto3.client("events"), args.bus, detail_type, promotion.to_detail())
    if args.store:
        outcome = _local_redeployer(args, tracking_uri).redeploy(promotion)
        result["redeploy"] = outcome.to_dict()
        print(json.dumps(result, default=str))
        return 0 if outcome.status in ("deployed", "already_live") else 1
    print(json.dumps(result, default=str))
    return 0


def _local_redeployer(args: argparse.Namespace, tracking_uri: str | None) -> Redeployer:
    """Run the redeploy in-process against a store (local parity, `make demo`)."""
    from pathlib import Path

    from mlserve.promotion.events import ModelPromoted
    from mlserve.promotion.redeploy import RedeployConfig, Redeployer, Resolved

    config = RedeployConfig(
        store_uri=args.store, registry_uri=tracking_uri, alias=args.alias, allow_pickle=args.allow_pickle
    )
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        return Redeployer(config)
    # A file/sqlite registry has no REST API: use the mlflow client for lookups and downloads.
    from mlflow import MlflowClient

    from mlserve.cli_errors import require_tracking_uri
    from mlserve.promotion.target import MlflowClientLookup, current_target
    from mlserve.registry import resolve_model_uri

    # Only with a registry: MlflowClient(None) creates ./mlflow.db in the working directory.
    client = MlflowClient(tracking_uri=tracking_uri) if tracking_uri else None

    def target(promotion: ModelPromoted) -> str | None:
        if client is None or args.no_registry:
            return None
        return current_target(MlflowClientLookup(client), promotion, alias=args.alias, stage="Production")

    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        uri = promotion.artifact_uri or f"models:/{promotion.model_name}/{promotion.version}"
        require_tracking_uri(uri, tracking_uri)
        resolved = resolve_model_uri(uri, name=promotion.model_name, version=promotion.version, dst=dest)
        return Resolved(resolved.local_dir, resolved.source, resolved.run_id)

    return Redeployer(config, target_lookup=target, resolver=resolve)


def _rollback(args: argparse.Namespace) -> int:
    from mlserve.promotion.status import rollback
    from mlserve.store import open_store

    result = rollback(
        open_store(args.store),
        args.name,
        args.to,
        requested_by=args.requested_by,
        force=args.force,
        allow_pickle=args.allow_pickle,
    )
    version = result.pointer["version"]
    tracking_uri = _tracking_uri(args)
    if tracking_uri and not args.no_registry:
        # keep the registry in step, so that a replayed older event cannot undo the rollback
        _set_in_registry(args, version)
    print(json.dumps({"live": version, "name": args.name, "manifest": result.manifest_key}))
    return 0


def _status(args: argparse.Namespace) -> int:
    from mlserve.promotion.status import status
    from mlserve.store import open_store

    report = status(open_store(args.store), args.name, limit=args.limit)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    live = report["live"]
    print(
        f"{args.name}: live version {live['version'] if live else '(none)'}"
        + (f" (run {live['run_id']}, promoted {live['promoted_at']} by {live['promoted_by']})" if live else "")
    )
    for attempt in report["attempts"]:
        line = f"  {attempt.get('deployment_id')}  v{attempt.get('version')}  {attempt.get('status')}"
        if attempt.get("reason"):
            line += f"  {attempt['reason']}"
        print(line)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mlserve.config import Settings, env_bool

    settings = Settings.from_env(
        store_uri=args.store,
        model_name=args.name,
        # A server handles concurrent requests: score them in worker threads.
        score_in_threads=env_bool(Env.SCORE_IN_THREADS, True),
        refresh_seconds=args.refresh_seconds,
        allow_pickle=True if args.allow_pickle else None,
    )
    # The app is the API's (lambda_api), found by name: the shared package does not import it.
    module_name, _, factory_name = API_APP_FACTORY.partition(":")
    create_app = getattr(importlib.import_module(module_name), factory_name)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _score(args: argparse.Namespace) -> int:
    import tempfile
    import time
    from pathlib import Path

    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local
    from mlserve.batch.limits import BatchLimits
    from mlserve.batch.reader import is_gzip_file
    from mlserve.config import Settings, env_bool
    from mlserve.live import build_live_model

    source = Path(args.input)
    if not source.is_file():
        print(f"mlserve score: error: no such file: {source}", file=sys.stderr)
        return 2
    name = source.name.removesuffix(".gz").removesuffix(".csv")
    out = Path(args.out) if args.out else source.with_name(f"{name}.predictions.csv")
    total = source.stat().st_size
    started = time.monotonic()
    # Input bytes are the decompressed ones, so a gzip file's bar can pass 100%: show rows then.
    # Two bytes are enough to tell; never read the whole (possibly huge) input for it.
    gzipped = is_gzip_file(source) if total else False

    def progress(rows: int, consumed: int) -> None:
        if args.quiet:
            return
        elapsed = max(time.monotonic() - started, 1e-9)
        percent = "" if gzipped else f"{min(consumed / max(total, 1), 1.0):6.1%} "
        line = f"\rscoring {source.name}: {percent}{rows:,} rows ({rows / elapsed:,.0f} rows/s)"
        print(line, end="", file=sys.stderr)

    options = BatchOptions(
        probabilities=args.probabilities,
        chunk_bytes=args.chunk_bytes,
        max_listed=args.max_listed,
        progress=progress,
        limits=BatchLimits.from_env(),  # the same MLSERVE_BATCH_* bounds as the batch Lambda
        escape_formulas=env_bool(Env.BATCH_ESCAPE_FORMULAS, False),
    )
    settings = Settings(
        store_uri=args.store,
        model_name=args.name,
        allow_pickle=args.allow_pickle,
        cache_dir=Path(tempfile.gettempdir()) / "mlserve",
    )
    live = build_live_model(settings, on_swap=None)
    if args.workers == 1 or gzipped:
        live.get()  # load (download, verify) before the clock starts: rows/s is the scoring rate
        started = time.monotonic()
    if args.workers > 1 and not gzipped:
        # The fan-out's range splitting, in processes (gzip is not splittable: one worker).
        from mlserve.batch.parallel import score_local_parallel

        report = score_local_parallel(
            source,
            out,
            store_uri=args.store,
            model_name=args.name,
            options=options,
            workers=args.workers,
            allow_pickle=args.allow_pickle,
            cache_dir=Path(tempfile.gettempdir()) / "mlserve",
        )
    else:
        report = score_local(source, out, live, options)
    if not args.quiet:
        print(file=sys.stderr)
    summary = {
        k: report.get(k)
        for k in (
            "status",
            "rows_read",
            "rows_scored",
            "rows_rejected",
            "rejected_by_reason",
            "rows_per_second",
            "predictions",
            "report",
        )
    }
    if report.get("error"):
        summary["error"] = report["error"]
    print(json.dumps(summary))
    return 0 if report["status"] == "succeeded" else 1


def _kinesis_client(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.client("kinesis", endpoint_url=args.endpoint_url, region_name=args.region)


def _stream_send(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlserve.stream_tools import put_all, records_from_csv

    source = Path(args.input)
    if not source.is_file():
        print(f"mlserve stream-send: error: no such file: {source}", file=sys.stderr)
        return 2
    records = records_from_csv(
        source,
        rows_per_record=args.rows_per_record,
        id_column=args.id_column,
        single_row=args.single_row,
        limit=args.limit,
    )
    summary = put_all(_kinesis_client(args), args.stream, records)
    print(json.dumps(summary))
    return 0 if summary["records_failed"] == 0 else 1


def _stream_read(args: argparse.Namespace) -> int:
    from mlserve.stream_tools import tail

    for count, record in enumerate(
        tail(
            _kinesis_client(args),
            args.stream,
            start="LATEST" if args.latest else "TRIM_HORIZON",
            follow=args.follow,
            timeout=args.timeout,
        ),
        start=1,
    ):
        print(json.dumps(record), flush=True)
        if args.limit and count >= args.limit:
            break
    return 0


def _add_kinesis_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--stream", required=True, help="Kinesis stream name (stack output StreamInputName/StreamOutputName)"
    )
    command.add_argument("--endpoint-url", default=None, help="emulator endpoint (default: AWS_ENDPOINT_URL or AWS)")
    command.add_argument("--region", default=None, help="AWS region (default: the environment's)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlserve", description="Serve MLflow scikit-learn models from Lambda or locally."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    publish = sub.add_parser("publish", help="stage an MLflow model into a store and make it live")
    publish.add_argument("model_uri", help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH or a directory")
    publish.add_argument("--store", required=True, help="s3://bucket[/prefix] or file:///path")
    publish.add_argument("--name", help="model name in the store (default: the registered name)")
    publish.add_argument(
        "--tracking-uri", help="MLflow registry of models:/ and runs:/ URIs (default: MLFLOW_TRACKING_URI)"
    )
    publish.add_argument("--version", help="version label (default: the registry version)")
    publish.add_argument("--allow-pickle", action="store_true", help="allow cloudpickle/pickle models")
    publish.add_argument("--promoted-by", default=f"mlserve publish ({os.environ.get('USER', 'unknown')})")
    publish.add_argument("--force", action="store_true", help="publish even if the signature breaks the live one")
    publish.add_argument(
        "--reference",
        help="CSV of reference (training) data: stores its profile as versions/<v>/profile.json for drift",
    )
    publish.set_defaults(run=_publish)

    user = f"mlserve ({os.environ.get('USER', 'unknown')})"
    promote = sub.add_parser("promote", help="promote a registry version: set the alias and put ModelPromoted")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--stage", action="store_true", help="use the legacy Production stage, not the alias")
    promote.add_argument("--alias", default=os.environ.get(Env.REGISTRY_ALIAS, "champion"))
    promote.add_argument("--tracking-uri", help="MLflow registry (default: MLFLOW_TRACKING_URI)")
    promote.add_argument("--no-registry", action="store_true", help="do not touch the registry, only send the event")
    promote.add_argument("--bus", default=os.environ.get(Env.EVENT_BUS), help="EventBridge bus to put the event on")
    promote.add_argument("--store", help="also redeploy in-process into this store (local, no AWS)")
    promote.add_argument("--artifact-uri", help="where the model directory is (default: ask the registry)")
    promote.add_argument("--force", action="store_true", help="accept a breaking signature change")
    promote.add_argument("--allow-pickle", action="store_true")
    promote.add_argument("--requested-by", default=user)
    promote.set_defaults(run=_promote)

    rollback = sub.add_parser("rollback", help="make the previous successful deployment live again")
    rollback.add_argument("name")
    rollback.add_argument("--to", help="a version deployed successfully before (default: the previous one)")
    rollback.add_argument("--store", required=True)
    rollback.add_argument("--alias", default=os.environ.get(Env.REGISTRY_ALIAS, "champion"))
    rollback.add_argument("--stage", action="store_true", help="move the legacy Production stage instead")
    rollback.add_argument("--tracking-uri", help="also move the alias there (default: MLFLOW_TRACKING_URI)")
    rollback.add_argument("--no-registry", action="store_true")
    rollback.add_argument("--force", action="store_true")
    rollback.add_argument("--allow-pickle", action="store_true")
    rollback.add_argument("--requested-by", default=f"rollback: {user}")
    rollback.set_defaults(run=_rollback)

    status = sub.add_parser("status", help="live version and the last deployment attempts")
    status.add_argument("name")
    status.add_argument("--store", required=True)
    status.add_argument("--limit", type=int, default=10)
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_status)

    serve = sub.add_parser("serve", help="run the prediction API locally under uvicorn")
    serve.add_argument("--store", required=True)
    serve.add_argument("--name", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--refresh-seconds", type=float)
    serve.add_argument("--allow-pickle", action="store_true")
    serve.set_defaults(run=_serve)

    score = sub.add_parser("score", help="score a local CSV/CSV.gz file with the live model (as the batch Lambda)")
    score.add_argument("input", help="input CSV file with a header row")
    score.add_argument("--out", help="predictions CSV (default: INPUT.predictions.csv beside the input)")
    score.add_argument("--store", required=True, help="s3://bucket[/prefix] or file:///path")
    score.add_argument("--name", required=True, help="model name in the store")
    score.add_argument("--probabilities", action="store_true", help="add probability_<class> columns (classifiers)")
    score.add_argument("--chunk-bytes", type=int, default=4 * 1024 * 1024, help="input bytes per scoring chunk")
    score.add_argument("--max-listed", type=int, default=100, help="rejected rows listed in full in the report")
    score.add_argument("--allow-pickle", action="store_true")
    score.add_argument("--quiet", action="store_true", help="no progress line")
    score.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes scoring byte ranges of the file in parallel (plain CSV; output identical to 1)",
    )
    score.set_defaults(run=_score)

    send = sub.add_parser("stream-send", help="put a CSV's rows into the Kinesis input stream as scoring records")
    send.add_argument("input", help="CSV file with a header row")
    _add_kinesis_arguments(send)
    send.add_argument("--rows-per-record", type=int, default=1, help='rows per {"id", "instances": [...]} record')
    send.add_argument("--single-row", action="store_true", help="send each row as a bare row object")
    send.add_argument("--id-column", help="column used as record id and partition key (not sent as a feature)")
    send.add_argument("--limit", type=int, help="send at most this many records")
    send.set_defaults(run=_stream_send)

    read = sub.add_parser("stream-read", help="print the output stream's prediction records as JSON lines")
    _add_kinesis_arguments(read)
    read.add_argument("--latest", action="store_true", help="only records put from now on (default: all retained)")
    read.add_argument("--follow", "-f", action="store_true", help="keep waiting for new records")
    read.add_argument("--timeout", type=float, help="stop after this many seconds")
    read.add_argument("--limit", type=int, help="stop after this many records")
    read.set_defaults(run=_stream_read)
    from mlserve.monitoring.cli import add_drift_parser

    add_drift_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from mlserve.observability import local_tool

    try:
        with local_tool():  # stdout is the command's output: logs to stderr, no EMF
            return int(args.run(args))
    except MlserveError as exc:
        print(f"mlserve {args.command}: error: {exc.message}", file=sys.stderr)
        for detail in exc.details:
            print(f"  {'.'.join(map(str, detail.loc))}: {detail.msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mlserve {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from mlserve.cli_errors import DEBUG_VARIABLE, debug_enabled, describe

        if debug_enabled():
            raise
        print(
            f"mlserve {args.command}: error: {describe(exc)} (traceback: {DEBUG_VARIABLE}=1)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
