"""A minimal local CSV scorer with the batch report format, used by `mlserve.uploads` only
when the batch package (`mlserve.batch`, issue 4) is not part of the build.

Same outputs as `mlserve.batch.job.score_local`: `<x>.predictions.csv` (input columns +
`prediction` + `model_version`, good rows only, written atomically) and `<x>.report.json`
(status, rows read/scored/rejected, rejected rows with line/column/reason, model).
Delete this module once the batch package is merged.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlserve.errors import InputError
from mlserve.protocol import csv_cell
from mlserve.scoring import predict_rows

MAX_LISTED = 100


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def score_local_fallback(input_path: Path, output_path: Path, live: Any) -> dict[str, Any]:
    started = time.time()
    model = live.get()
    report: dict[str, Any] = {
        "status": "succeeded",
        "input": {"path": str(input_path), "size": input_path.stat().st_size},
        "predictions": None,
        "model": model.identity.to_dict(),
        "rows_read": 0,
        "rows_scored": 0,
        "rows_rejected": 0,
        "rejected_by_reason": {},
        "rejected_rows": [],
        "rejected_rows_listed": 0,
        "output_columns": [],
    }
    reasons: Counter[str] = Counter()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = input_path.read_bytes().decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            raise InputError("the file is empty", code="no_rows")
        types = {c.name: c.type for c in model.spec.inputs}
        missing = [c.name for c in model.spec.inputs if c.required and c.name not in header]
        if missing:
            raise InputError(f"the header is missing required column(s): {', '.join(missing)}", code="missing_columns")
        good: list[tuple[list[str], dict[str, Any]]] = []
        for record in reader:
            if not record:
                continue
            report["rows_read"] += 1
            line = reader.line_num
            errors: list[dict[str, Any]] = []
            if len(record) != len(header):
                errors.append(
                    {
                        "column": None,
                        "reason": "wrong_field_count",
                        "message": f"has {len(record)} fields, the header has {len(header)}",
                    }
                )
            else:
                row = {name: csv_cell(value, types.get(name)) for name, value in zip(header, record, strict=True)}
                try:
                    good.append((record, model.schema.validate_rows([row], forbid_extra=False)[0]))
                except InputError as exc:
                    for detail in exc.details:
                        column = next((str(p) for p in detail.loc if isinstance(p, str) and p in types), None)
                        errors.append(
                            {
                                "column": column,
                                "reason": "invalid_value",
                                "message": detail.msg,
                                "value": record[header.index(column)] if column else None,
                            }
                        )
            if errors:
                report["rows_rejected"] += 1
                reasons.update({e["reason"] for e in errors})
                if len(report["rejected_rows"]) < MAX_LISTED:
                    report["rejected_rows"].append(
                        {"line": line, "record": report["rows_read"], "errors": errors, "raw": ",".join(record)[:2000]}
                    )
        if report["rows_read"] == 0:
            raise InputError("the file has a header but no data rows", code="no_rows")
        predictions = predict_rows(model, [row for _, row in good]).predictions if good else []
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = [*header, "prediction", "model_version"]
        writer.writerow(columns)
        for (record, _), prediction in zip(good, predictions, strict=True):
            writer.writerow([*record, prediction, model.identity.version])
        fd, tmp = tempfile.mkstemp(dir=output_path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(out.getvalue().encode())
        os.replace(tmp, output_path)
        report.update(rows_scored=len(good), predictions=str(output_path), output_columns=columns)
    except (InputError, UnicodeDecodeError, csv.Error, ValidationError) as exc:
        message = exc.message if isinstance(exc, InputError) else str(exc)
        code = exc.code if isinstance(exc, InputError) else "invalid_file"
        report.update(status="rejected", error={"code": code, "message": message})
    ended = time.time()
    report["rejected_by_reason"] = dict(reasons)
    report["rejected_rows_listed"] = len(report["rejected_rows"])
    report.update(started_at=_iso(started), ended_at=_iso(ended), seconds=round(ended - started, 3))
    stem = output_path.name.removesuffix(".predictions.csv").removesuffix(".csv")
    report_path = output_path.with_name(stem + ".report.json")
    fd, tmp = tempfile.mkstemp(dir=output_path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(report, handle, indent=1)
    os.replace(tmp, report_path)
    return report
