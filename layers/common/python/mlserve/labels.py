"""Display names for a classifier's classes ("malignant"/"benign" for 0/1).

Logged with the model as MLflow model metadata (`log_model(..., metadata={"class_labels":
{"0": "malignant", "1": "benign"}})`, stored in the MLmodel file), read here from the loaded
MLmodel. `/predict` keeps `predictions` as the model's own values (API clients rely on them)
and adds `labels`, the display name of each prediction, when the model has them.
"""

from __future__ import annotations

from typing import Any

from mlserve.mlmodel import ModelSpec

METADATA_KEY = "class_labels"


def class_labels(spec: ModelSpec) -> dict[str, str] | None:
    """{str(class value): display name}, or None when the model logged none (or not a
    mapping of scalars: a malformed entry is ignored, it never fails serving)."""
    metadata = spec.raw.get("metadata") if isinstance(spec.raw, dict) else None
    labels = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if not isinstance(labels, dict) or not labels:
        return None
    if not all(isinstance(v, str | int | float | bool) for v in labels.values()):
        return None
    return {_key(k): str(v) for k, v in labels.items()}


def _key(value: Any) -> str:
    """Class values as the JSON answer shows them: 1, 1.0 and "1" name the same class."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def label_fields(spec: ModelSpec, predictions: list[Any]) -> dict[str, Any]:
    """`{"labels": [...]}` for a /predict answer (a class without a name keeps its value as
    text), or {} when the model has no class labels."""
    labels = class_labels(spec)
    if labels is None:
        return {}
    return {"labels": [labels.get(_key(p), str(p)) for p in predictions]}
