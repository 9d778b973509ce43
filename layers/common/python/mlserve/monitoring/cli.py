"""`mlserve drift`: compare two CSV files (Evidently-exact statistics), or the live
version's stored reference profile with captured requests / a CSV. Exit 0: no drift,
3: drift, 2: cannot tell (bad input, no reference profile, no data)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlserve.errors import InputError

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 3
EXIT_UNKNOWN = 2
PUBLIC_KEYS = ("features", "drifted_features", "share_drifted", "dataset_drift")


def add_drift_parser(sub: Any) -> None:
    drift = sub.add_parser(
        "drift",
        help="data drift: --reference REF.csv --current CUR.csv, or --store/--name (stored profile + captures)",
        description="Exit status: 0 no drift, 3 drift (see --fail-on), 2 cannot tell.",
    )
    drift.add_argument("--reference", help="reference CSV (header row)")
    drift.add_argument("--current", help="current CSV (header row); with --store, instead of the captured data")
    drift.add_argument("--store", help="model store: use the live version's reference profile")
    drift.add_argument("--name", help="model name in the store")
    drift.add_argument("--monitoring-store", help="where captures are (default: the model store)")
    drift.add_argument("--batch-store", help="also read batch inputs (incoming/) from this store")
    drift.add_argument("--window-days", type=float, default=1.0, help="captured data of the last N days (default 1)")
    drift.add_argument("--columns", help="comma-separated columns to compare (CSV mode; default: all shared)")
    drift.add_argument("--categorical", help="comma-separated columns to treat as categories (CSV mode)")
    drift.add_argument("--numeric-test", default="psi", help="ks, psi or jensenshannon (default psi)")
    drift.add_argument("--categorical-test", default="jensenshannon", help="chisquare, jensenshannon or psi")
    drift.add_argument(
        "--threshold", action="append", default=[], metavar="TEST=VALUE", help="e.g. psi=0.2 ks=0.01 (repeatable)"
    )
    drift.add_argument("--drift-share", type=float, default=0.5, help="share of drifted features = dataset drift")
    drift.add_argument("--fail-on", choices=("dataset", "feature"), default="dataset", help="what exits 3")
    drift.add_argument("--json", action="store_true", help="print the JSON report")
    drift.set_defaults(run=run_drift_command)


def _policy(args: argparse.Namespace) -> Any:
    from mlserve.monitoring.drift import DriftPolicy

    thresholds: dict[str, float] = {}
    for item in args.threshold:
        test, _, value = item.partition("=")
        try:
            thresholds[test.strip()] = float(value)
        except ValueError:
            raise InputError(f"--threshold {item!r}: use TEST=NUMBER, e.g. psi=0.2") from None
    return DriftPolicy(
        numeric_test=args.numeric_test,
        categorical_test=args.categorical_test,
        thresholds=thresholds,
        drift_share=args.drift_share,
    )


def run_drift_command(args: argparse.Namespace) -> int:
    policy = _policy(args)
    if args.store:
        if not args.name:
            raise InputError("--store needs --name")
        report = _store_report(args, policy)
        if report["status"] in ("no_reference", "no_model", "no_data"):
            print(f"mlserve drift: {report['message']}", file=sys.stderr)
            if args.json:
                print(json.dumps(report, default=str))
            return EXIT_UNKNOWN
    elif args.reference and args.current:
        report = _csv_report(Path(args.reference), Path(args.current), args, policy)
    else:
        raise InputError("give --reference REF.csv --current CUR.csv, or --store URI --name NAME")
    if args.json:
        print(json.dumps({key: report[key] for key in PUBLIC_KEYS}, default=str))
    else:
        print(format_table(report))
    drifted = report["dataset_drift"] if args.fail_on == "dataset" else bool(report["drifted_features"])
    return EXIT_DRIFT if drifted else EXIT_NO_DRIFT


def _store_report(args: argparse.Namespace, policy: Any) -> dict[str, Any]:
    from mlserve.monitoring.job import DriftJobSettings, build_report

    settings = DriftJobSettings(
        store_uri=args.store,
        model_name=args.name,
        monitoring_uri=args.monitoring_store or args.store,
        batch_uri=args.batch_store,
        window_days=args.window_days,
        policy=policy,
    )
    current = _read(Path(args.current)) if args.current else None
    report, _ = build_report(settings, current_csv=current)
    return report


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def read_frame(path: Path, categorical: set[str]) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={name: str for name in categorical})
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as CSV: {exc}") from None


def _csv_report(reference_path: Path, current_path: Path, args: argparse.Namespace, policy: Any) -> dict[str, Any]:
    from mlserve.monitoring.drift import compare_columns, summarize
    from mlserve.monitoring.profile import as_categorical, as_numeric

    categorical = {c.strip() for c in (args.categorical or "").split(",") if c.strip()}
    reference = read_frame(reference_path, categorical)
    current = read_frame(current_path, categorical)
    wanted = [c.strip() for c in args.columns.split(",")] if args.columns else list(reference.columns)
    for label, frame, path in (("reference", reference, reference_path), ("current", current, current_path)):
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise InputError(f"the {label} file {path.name} has no column(s) {missing}")
    kinds = {
        name: "numeric" if name not in categorical and reference[name].dtype.kind in "fiu" else "categorical"
        for name in wanted
    }
    mismatched = [n for n in wanted if kinds[n] == "numeric" and current[n].dtype.kind not in "fiu"]
    if mismatched:
        raise InputError(
            f"column(s) {mismatched} are numeric in the reference but not in the current file "
            "(list them in --categorical to compare as categories)"
        )

    def convert(frame: Any) -> dict[str, Any]:
        return {
            name: as_numeric(frame[name].to_numpy())
            if kinds[name] == "numeric"
            else as_categorical(frame[name].where(frame[name].notna(), None).to_numpy(dtype=object))
            for name in wanted
        }

    features = compare_columns(convert(reference), convert(current), kinds, policy)
    report = summarize(features, policy)
    report["details"] = {f.name: f.detail() for f in features}
    return report


def format_table(report: dict[str, Any]) -> str:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4g}"

    lines = [f"{'feature':<24} {'test':<14} {'statistic':>10} {'p_value':>10} {'psi':>8}  verdict"]
    for name, feature in report["features"].items():
        lines.append(
            f"{name[:24]:<24} {feature['test'] or '-'!s:<14} {number(feature['statistic']):>10} "
            f"{number(feature['p_value']):>10} {number(feature['psi']):>8}  "
            + ("DRIFT" if feature["drifted"] else ("untested" if feature["test"] is None else "ok"))
        )
    lines.append(
        f"drifted: {len(report['drifted_features'])}/{len(report['features'])} "
        f"(share {report['share_drifted']:.3g}); dataset drift: {'YES' if report['dataset_drift'] else 'no'}"
    )
    return "\n".join(lines)
