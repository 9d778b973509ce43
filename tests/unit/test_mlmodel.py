from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlserve.errors import ModelLoadError
from mlserve.mlmodel import parse_mlmodel, read_input_example, read_model_spec

BASE = """
flavors:
  python_function: {loader_module: mlflow.sklearn, python_version: 3.11.7}
  sklearn: {pickled_model: model.skops, serialization_format: skops, sklearn_version: 1.9.1}
run_id: abc
saved_input_example_info: {artifact_path: input_example.json, pandas_orient: split, type: dataframe}
signature:
  inputs: '{inputs}'
  outputs: '[{"type": "long", "required": true}]'
"""


def mlmodel(inputs: list[dict[str, object]]) -> str:
    return BASE.replace("{inputs}", json.dumps(inputs))


def test_real_mlflow_model_parses(demo_registry) -> None:
    spec = read_model_spec(demo_registry.classifier_dir)
    assert spec.serialization_format == "skops"
    assert spec.model_file == "model.skops"
    assert spec.sklearn_version == __import__("sklearn").__version__
    assert len(spec.inputs) == 30 and spec.inputs[0].name == "mean radius" and spec.inputs[0].type == "double"
    assert all(column.required for column in spec.inputs)
    assert spec.run_id == demo_registry.classifier_run_id
    rows = read_input_example(demo_registry.classifier_dir, spec)
    assert len(rows) == 5 and set(rows[0]) == set(spec.column_names)


def test_all_column_types_and_optional_columns() -> None:
    types = ["double", "float", "long", "integer", "boolean", "string", "datetime"]
    spec = parse_mlmodel(mlmodel([{"name": t, "type": t, "required": t != "string"} for t in types]))
    assert [c.type for c in spec.inputs] == types
    assert [c.required for c in spec.inputs] == [t != "string" for t in types]
    assert spec.input_example is not None and spec.input_example.pandas_orient == "split"
    assert spec.python_version == "3.11.7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: {python_function: {}}\n", "no 'sklearn' flavor"),
        ("flavors: {sklearn: {serialization_format: skops}}\n", "pickled_model"),
        (
            "flavors: {sklearn: {pickled_model: m, serialization_format: joblib}}\n",
            "unsupported sklearn serialization_format",
        ),
        ("flavors: {sklearn: {pickled_model: m}}\n", "no input signature"),
        ("[not, a, mapping]\n", "not a mapping"),
        ("flavors: [\n", "not valid YAML"),
    ],
)
def test_bad_mlmodel_files_are_explained(text: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        parse_mlmodel(text)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}], "tensor-based"),
        ([{"type": "double"}], "no column name"),
        ([{"name": "x", "type": "binary"}], "unsupported type 'binary'"),
    ],
)
def test_unsupported_signatures_are_refused(inputs: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        parse_mlmodel(mlmodel(inputs))


def test_missing_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no MLmodel file"):
        read_model_spec(tmp_path)
    (tmp_path / "MLmodel").write_text(mlmodel([{"name": "x", "type": "double"}]))
    spec = read_model_spec(tmp_path)
    with pytest.raises(ModelLoadError, match="input example file input_example.json is missing"):
        read_input_example(tmp_path, spec)
    (tmp_path / "input_example.json").write_text('{"columns": ["x"], "data": [[1.5], [2]]}')
    assert read_input_example(tmp_path, spec) == [{"x": 1.5}, {"x": 2}]
