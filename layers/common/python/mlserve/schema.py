"""MLflow signature -> request schema, compiled once per model version.

Rows are validated as TypedDicts (not model instances): pydantic-core checks them in
Rust straight from the request bytes, and the result is plain dicts, ready to become
columns. Column names are used verbatim, so names with spaces ("mean radius") work and
errors name the real column.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Annotated, Any, NotRequired

import numpy as np
import orjson
from pydantic import AfterValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from mlserve.errors import ErrorDetail, InputError
from mlserve.mlmodel import ColumnSpec

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# Values must fit the numpy dtype the column becomes (see NUMPY_DTYPES): out of range is a
# 422 naming the field, not an OverflowError (500) or a silently wrong value (inf, a
# wrapped-around date).
FLOAT32_MAX = float(np.finfo(np.float32).max)
Float32 = Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; one day of margin for UTC offsets.
DATETIME_MIN = datetime(1677, 9, 23)
DATETIME_MAX = datetime(2262, 4, 10)


def _datetime_in_range(value: datetime) -> datetime:
    if not DATETIME_MIN <= value.replace(tzinfo=None) <= DATETIME_MAX:
        raise ValueError(f"datetime must be between {DATETIME_MIN:%Y-%m-%d} and {DATETIME_MAX:%Y-%m-%d}")
    return value


# Dates arrive as strings in many shapes ("2024-01-02", "2024-01-02T10:00:00Z"): lax.
LaxDatetime = Annotated[datetime, Strict(False), AfterValidator(_datetime_in_range)]

PYTHON_TYPES: dict[str, Any] = {
    "double": FiniteFloat,
    "float": Float32,
    "long": Int64,
    "integer": Int32,
    "boolean": bool,
    "string": str,
    "datetime": LaxDatetime,
}

# numpy dtype of each column type when the column has no missing values.
NUMPY_DTYPES: dict[str, Any] = {
    "double": np.float64,
    "float": np.float32,
    "long": np.int64,
    "integer": np.int32,
    "boolean": np.bool_,
    "string": object,
    "datetime": "datetime64[ns]",
}

DEFAULT_MAX_ROWS = 10_000
PREDICT_KEYS = frozenset({"instances", "probabilities"})


class ValidatedRows(list[dict[str, Any]]):
    """Validated rows that also carry their float64 matrix (signature order), built by the
    all-double fast path so scoring does not rebuild it from the dicts."""

    columns: tuple[ColumnSpec, ...]
    matrix: Any

    def __init__(self, rows: list[dict[str, Any]], columns: tuple[ColumnSpec, ...], matrix: Any) -> None:
        super().__init__(rows)
        self.columns = columns
        self.matrix = matrix


@dataclass(frozen=True)
class DoubleRowsCheck:
    """The fast path for signatures whose columns are all required doubles (MLflow's type
    for float64 pandas columns, the common case): it accepts a request only when pydantic
    would accept it unchanged — every row a dict with exactly the signature's keys, every
    value a finite float — and builds the matrix at the same time. Anything else (ints that
    pydantic would convert, bools, strings, nulls, missing or extra keys, non-finite or
    out-of-range numbers) returns None and takes the pydantic path, which gives the
    identical result or the same error message."""

    columns: tuple[ColumnSpec, ...]
    keys: frozenset[str]
    getter: Callable[[dict[str, Any]], Any]

    @classmethod
    def for_columns(cls, columns: tuple[ColumnSpec, ...]) -> DoubleRowsCheck | None:
        if len(columns) < 2 or any(c.type != "double" or not c.required for c in columns):
            return None
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            return None
        return cls(columns, frozenset(names), operator.itemgetter(*names))

    def matrix(self, rows: Any) -> Any:
        if type(rows) is not list or not rows:
            return None
        keys, width = self.keys, len(self.keys)
        for row in rows:
            if type(row) is not dict or len(row) != width or row.keys() != keys:
                return None
        flat = list(chain.from_iterable(map(self.getter, rows)))
        if set(map(type, flat)) != {float}:
            return None
        matrix = np.fromiter(flat, dtype=np.float64, count=len(flat)).reshape(len(rows), width)
        if not np.isfinite(matrix).all():
            return None
        return matrix


def _typed_dict(title: str, fields: dict[str, Any], extra: str) -> Any:
    typed = TypedDict(title, fields)  # type: ignore[misc]
    typed.__pydantic_config__ = ConfigDict(extra=extra, strict=True, title=title)  # type: ignore[attr-defined,typeddict-item]
    return typed


def _title(model_name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", model_name) if part) or "Model"


def row_fields(columns: tuple[ColumnSpec, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for column in columns:
        # Types are built at run time from the signature.
        python_type: Any = PYTHON_TYPES[column.type]
        if column.required:
            fields[column.name] = Annotated[python_type, Field(description=f"{column.type} column")]
        else:
            fields[column.name] = NotRequired[
                Annotated[python_type | None, Field(description=f"{column.type} column (optional)")]
            ]
    return fields


@dataclass
class RequestSchema:
    """Validators and JSON schemas for one model version."""

    columns: tuple[ColumnSpec, ...]
    max_rows: int
    predict_request: TypeAdapter[Any]
    rows_strict: TypeAdapter[Any]
    rows_lenient: TypeAdapter[Any]
    row_schema: dict[str, Any]
    predict_request_schema: dict[str, Any]
    fast_rows: DoubleRowsCheck | None = field(default=None)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def validate_predict_body(self, body: bytes) -> dict[str, Any]:
        """Validate a /predict body straight from bytes."""
        fast = self._fast_predict_body(body)
        if fast is not None:
            return fast
        try:
            request: dict[str, Any] = self.predict_request.validate_json(body)
        except ValidationError as exc:
            raise validation_error_to_input_error(exc) from None
        self.check_row_count(len(request["instances"]))
        return request

    def _fast_predict_body(self, body: bytes) -> dict[str, Any] | None:
        if self.fast_rows is None:
            return None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(payload) is not dict or not payload.keys() <= PREDICT_KEYS:
            return None
        if "probabilities" in payload and type(payload["probabilities"]) is not bool:
            return None
        instances = payload.get("instances")
        if type(instances) is not list or len(instances) > self.max_rows:
            return None
        matrix = self.fast_rows.matrix(instances)
        if matrix is None:
            return None
        payload["instances"] = ValidatedRows(instances, self.columns, matrix)
        return payload

    def validate_rows(self, rows: Any, *, forbid_extra: bool) -> list[dict[str, Any]]:
        """Validate already-parsed rows (from /invocations formats)."""
        if not isinstance(rows, list):
            raise InputError("rows must be a list", details=[ErrorDetail([], "expected a list of rows")])
        if not rows:
            raise InputError("the request holds no rows", details=[ErrorDetail([], "at least one row is required")])
        self.check_row_count(len(rows))
        if self.fast_rows is not None:
            matrix = self.fast_rows.matrix(rows)
            if matrix is not None:
                return ValidatedRows(rows, self.columns, matrix)
        adapter = self.rows_strict if forbid_extra else self.rows_lenient
        try:
            validated: list[dict[str, Any]] = adapter.validate_python(rows)
        except ValidationError as exc:
            raise validation_error_to_input_error(exc) from None
        return validated

    def check_row_count(self, count: int) -> None:
        if count > self.max_rows:
            raise InputError(
                f"too many rows: {count} > MLSERVE_MAX_ROWS={self.max_rows}",
                code="too_many_rows",
                status=413,
                details=[ErrorDetail(["instances"], f"at most {self.max_rows} rows per request")],
            )


def compile_schema(model_name: str, columns: tuple[ColumnSpec, ...], max_rows: int = DEFAULT_MAX_ROWS) -> RequestSchema:
    title = _title(model_name)
    fields = row_fields(columns)
    strict_row = _typed_dict(f"{title}Row", fields, extra="forbid")
    # MLflow's own scoring server ignores unknown columns; /invocations does the same.
    lenient_row = _typed_dict(f"{title}InvocationRow", fields, extra="ignore")
    request = _typed_dict(
        f"{title}PredictRequest",
        {
            "instances": Annotated[
                list[strict_row],  # type: ignore[valid-type]
                Field(min_length=1, description="rows to score, one object per row"),
            ],
            "probabilities": NotRequired[
                Annotated[bool, Field(description="also return class probabilities (classifiers)")]
            ],
        },
        extra="forbid",
    )
    predict_request = TypeAdapter(request)
    return RequestSchema(
        columns=columns,
        max_rows=max_rows,
        predict_request=predict_request,
        rows_strict=TypeAdapter(list[strict_row]),  # type: ignore[valid-type]
        rows_lenient=TypeAdapter(list[lenient_row]),  # type: ignore[valid-type]
        row_schema=TypeAdapter(strict_row).json_schema(ref_template="#/components/schemas/{model}"),
        predict_request_schema=predict_request.json_schema(ref_template="#/components/schemas/{model}"),
        fast_rows=DoubleRowsCheck.for_columns(columns),
    )


def validation_error_to_input_error(exc: ValidationError) -> InputError:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        message = errors[0]["msg"]
        return InputError(
            f"malformed JSON: {message}",
            code="malformed_json",
            status=400,
            details=[ErrorDetail(["body"], message)],
        )
    details = [ErrorDetail(list(error["loc"]), error["msg"]) for error in errors[:50]]
    first = details[0]
    where = ".".join(str(part) for part in first.loc) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InputError(f"invalid input at {where}: {first.msg}{more}", code="validation_error", details=details)
