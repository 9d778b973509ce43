"""Run Evidently's data drift preset on two CSV files; print per-column results as JSON.

Runs in the separate oracle venv (``make oracle-venv``: Evidently and its many
dependencies never enter the project's venv or any Lambda). Usage:

    python evidently_oracle.py REF.csv CUR.csv SPEC.json

SPEC.json: {"numerical": [...], "categorical": [...], "methods": {col: test},
"thresholds": {col: float}, "drift_share": 0.5}
"""

from __future__ import annotations

import json
import sys

import pandas as pd
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report


def main(reference_csv: str, current_csv: str, spec_json: str) -> None:
    with open(spec_json) as handle:
        spec = json.load(handle)
    columns = spec["numerical"] + spec["categorical"]
    dtypes = {name: str for name in spec["categorical"]}
    reference = pd.read_csv(reference_csv, dtype=dtypes)[columns]
    current = pd.read_csv(current_csv, dtype=dtypes)[columns]
    report = Report(
        metrics=[
            DataDriftPreset(
                columns=columns,
                drift_share=spec.get("drift_share", 0.5),
                per_column_stattest=spec["methods"],
                per_column_stattest_threshold=spec["thresholds"],
            )
        ]
    )
    mapping = ColumnMapping(
        numerical_features=spec["numerical"], categorical_features=spec["categorical"], target=None, prediction=None
    )
    report.run(reference_data=reference, current_data=current, column_mapping=mapping)
    result = report.as_dict()
    table = next(m["result"] for m in result["metrics"] if m["metric"] == "DataDriftTable")
    dataset = next(m["result"] for m in result["metrics"] if m["metric"] == "DatasetDriftMetric")
    print(
        json.dumps(
            {
                "features": {
                    name: {
                        "test": column["stattest_name"],
                        "score": column["drift_score"],
                        "threshold": column["stattest_threshold"],
                        "drifted": column["drift_detected"],
                    }
                    for name, column in table["drift_by_columns"].items()
                },
                "share_drifted": dataset["share_of_drifted_columns"],
                "dataset_drift": dataset["dataset_drift"],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
