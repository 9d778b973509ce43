"""`mlserve` command line: publish a model into a store, serve it locally, score CSV files."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from mlserve.errors import MlserveError


def _publish(args: argparse.Namespace) -> int:
    from mlserve.registry import publish_model_uri

    resolved, result = publish_model_uri(
        args.model_uri,
        args.store,
        name=args.name,
        version=args.version,
        promoted_by=args.promoted_by,
        allow_pickle=args.allow_pickle,
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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ["MLSERVE_STORE"] = args.store
    os.environ["MLSERVE_MODEL_NAME"] = args.name
    if args.refresh_seconds is not None:
        os.environ["MLSERVE_REFRESH_SECONDS"] = str(args.refresh_seconds)
    if args.allow_pickle:
        os.environ["MLSERVE_ALLOW_PICKLE"] = "true"
    from lambda_api.app import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _score(args: argparse.Namespace) -> int:
    import tempfile
    import time
    from pathlib import Path

    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local
    from mlserve.live import LiveModel
    from mlserve.store import open_store

    source = Path(args.input)
    if not source.is_file():
        print(f"mlserve score: error: no such file: {source}", file=sys.stderr)
        return 2
    name = source.name.removesuffix(".gz").removesuffix(".csv")
    out = Path(args.out) if args.out else source.with_name(f"{name}.predictions.csv")
    total = source.stat().st_size
    started = time.monotonic()
    # Input bytes are the decompressed ones, so a gzip file's bar can pass 100%: show rows then.
    gzipped = source.read_bytes()[:2] == b"\x1f\x8b" if total else False

    def progress(rows: int, consumed: int) -> None:
        if args.quiet:
            return
        elapsed = max(time.monotonic() - started, 1e-9)
        percent = "" if gzipped else f"{min(consumed / max(total, 1), 1.0):6.1%} "
        line = f"\rscoring {source.name}: {percent}{rows:,} rows ({rows / elapsed:,.0f} rows/s)"
        print(line, end="", file=sys.stderr)

    options = BatchOptions(
        probabilities=args.probabilities, chunk_bytes=args.chunk_bytes, max_listed=args.max_listed, progress=progress
    )
    live = LiveModel(
        open_store(args.store),
        args.name,
        allow_pickle=args.allow_pickle,
        cache_dir=Path(tempfile.gettempdir()) / "mlserve",
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlserve", description="Serve MLflow scikit-learn models from Lambda or locally."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    publish = sub.add_parser("publish", help="stage an MLflow model into a store and make it live")
    publish.add_argument("model_uri", help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH or a directory")
    publish.add_argument("--store", required=True, help="s3://bucket[/prefix] or file:///path")
    publish.add_argument("--name", help="model name in the store (default: the registered name)")
    publish.add_argument("--version", help="version label (default: the registry version)")
    publish.add_argument("--allow-pickle", action="store_true", help="allow cloudpickle/pickle models")
    publish.add_argument("--promoted-by", default=f"mlserve publish ({os.environ.get('USER', 'unknown')})")
    publish.set_defaults(run=_publish)

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
    score.set_defaults(run=_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except MlserveError as exc:
        print(f"mlserve {args.command}: error: {exc.message}", file=sys.stderr)
        for detail in exc.details:
            print(f"  {'.'.join(map(str, detail.loc))}: {detail.msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
