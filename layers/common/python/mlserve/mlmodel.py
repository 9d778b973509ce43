"""Read an MLflow `MLmodel` file without importing mlflow (it is far too big for Lambda)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlserve.boosted import NATIVE_FORMATS, native_flavor_as_sklearn
from mlserve.errors import ModelLoadError
from mlserve.safe_paths import UnsafePathError, check_relative_path, contained_path

SUPPORTED_COLUMN_TYPES = frozenset({"double", "float", "long", "integer", "boolean", "string", "datetime"})
SERIALIZATION_FORMATS = frozenset({"skops", "cloudpickle", "pickle"}) | NATIVE_FORMATS


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}


@dataclass(frozen=True)
class InputExample:
    artifact_path: str
    type: str
    pandas_orient: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What mlserve needs from an MLmodel file."""

    model_file: str
    serialization_format: str
    sklearn_version: str | None
    inputs: tuple[ColumnSpec, ...]
    outputs: list[dict[str, Any]] | None
    input_example: InputExample | None
    run_id: str | None
    model_uuid: str | None
    python_version: str | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.inputs]

    def signature_dict(self) -> dict[str, Any]:
        return {
            "inputs": [column.to_dict() for column in self.inputs],
            "outputs": self.outputs,
        }


def parse_signature_inputs(raw_inputs: Any) -> tuple[ColumnSpec, ...]:
    """MLflow stores the signature's inputs as a JSON string inside the YAML."""
    try:
        columns = json.loads(raw_inputs) if isinstance(raw_inputs, str) else raw_inputs
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"signature inputs are not valid JSON: {exc}") from exc
    if not isinstance(columns, list) or not columns:
        raise ModelLoadError("signature inputs must be a non-empty list of columns")
    specs = []
    for index, column in enumerate(columns):
        if not isinstance(column, dict):
            raise ModelLoadError(f"signature input {index} is not an object")
        if column.get("type") == "tensor":
            raise ModelLoadError(
                "tensor-based signatures are not supported: log the model with a pandas "
                "DataFrame input example so the signature names its columns"
            )
        name = column.get("name")
        if not name:
            raise ModelLoadError(f"signature input {index} has no column name: mlserve needs named columns")
        column_type = column.get("type")
        if column_type not in SUPPORTED_COLUMN_TYPES:
            raise ModelLoadError(
                f"signature column {name!r} has unsupported type {column_type!r}; "
                f"supported: {', '.join(sorted(SUPPORTED_COLUMN_TYPES))}"
            )
        specs.append(ColumnSpec(str(name), str(column_type), bool(column.get("required", True))))
    return tuple(specs)


def _plain_relative(field_name: str, value: Any) -> None:
    """MLmodel paths are read inside the model directory: refuse absolute paths and '..'."""
    try:
        check_relative_path(str(value), what=f"MLmodel {field_name}")
    except UnsafePathError as exc:
        raise ModelLoadError(str(exc)) from None


def parse_mlmodel(text: str) -> ModelSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelLoadError(f"MLmodel is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError("MLmodel is not a mapping")
    flavors = raw.get("flavors") or {}
    sklearn = flavors.get("sklearn")
    if not isinstance(sklearn, dict):  # lightgbm/xgboost/catboost flavors (mlserve.boosted)
        sklearn = native_flavor_as_sklearn(flavors)
    if not isinstance(sklearn, dict):
        found = ", ".join(sorted(flavors)) or "none"
        raise ModelLoadError(f"model has no 'sklearn' flavor (flavors: {found})")
    model_file = sklearn.get("pickled_model")
    if not model_file:
        raise ModelLoadError("sklearn flavor does not name its model file ('pickled_model')")
    _plain_relative("pickled_model", model_file)
    serialization_format = sklearn.get("serialization_format", "cloudpickle")
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ModelLoadError(
            f"unsupported sklearn serialization_format {serialization_format!r}; "
            f"supported: {', '.join(sorted(SERIALIZATION_FORMATS))}"
        )
    signature = raw.get("signature")
    if not isinstance(signature, dict) or not signature.get("inputs"):
        raise ModelLoadError(
            "model has no input signature: log it with `signature=` or an `input_example` "
            "so the API can validate requests"
        )
    outputs_raw = signature.get("outputs")
    outputs = json.loads(outputs_raw) if isinstance(outputs_raw, str) else outputs_raw
    example_info = raw.get("saved_input_example_info")
    example = None
    if isinstance(example_info, dict) and example_info.get("artifact_path"):
        _plain_relative("saved_input_example_info.artifact_path", example_info["artifact_path"])
        example = InputExample(
            artifact_path=str(example_info["artifact_path"]),
            type=str(example_info.get("type", "dataframe")),
            pandas_orient=example_info.get("pandas_orient"),
        )
    python_flavor = flavors.get("python_function") or {}
    return ModelSpec(
        model_file=str(model_file),
        serialization_format=str(serialization_format),
        sklearn_version=sklearn.get("sklearn_version"),
        inputs=parse_signature_inputs(signature["inputs"]),
        outputs=outputs,
        input_example=example,
        run_id=raw.get("run_id"),
        model_uuid=raw.get("model_uuid"),
        python_version=python_flavor.get("python_version"),
        raw=raw,
    )


def read_model_spec(model_dir: Path) -> ModelSpec:
    path = model_dir / "MLmodel"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"no MLmodel file in {model_dir}: not an MLflow model directory") from None
    return parse_mlmodel(text)


def read_input_example(model_dir: Path, spec: ModelSpec) -> list[dict[str, Any]]:
    """The logged input example as rows (column name -> value)."""
    if spec.input_example is None:
        raise ModelLoadError("model was logged without an input example")
    path = contained_path(model_dir, spec.input_example.artifact_path, what="input example")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"input example file {spec.input_example.artifact_path} is missing") from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"input example is not valid JSON: {exc}") from exc
    if isinstance(payload, dict) and "columns" in payload and "data" in payload:
        return [dict(zip(payload["columns"], row, strict=False)) for row in payload["data"]]
    if isinstance(payload, list) and all(isinstance(row, dict) for row in payload):
        return payload
    if isinstance(payload, dict) and all(not isinstance(v, (list, dict)) for v in payload.values()):
        return [payload]
    raise ModelLoadError("input example is not in a tabular form mlserve can read")
