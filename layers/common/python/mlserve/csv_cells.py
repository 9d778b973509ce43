"""What one CSV cell means for a signature column type: the rules shared by the batch
scorer's column-at-a-time conversion (`mlserve.batch.convert`) and `/invocations`' CSV path
(`mlserve.protocol.csv_cell`), kept here so the two cannot drift.

- An empty cell is missing, except in a string column, where "" is a value.
- Numbers are decimal text; "_" digit separators (which Python's float()/int() accept) and
  hex are not numbers. A rejected number is echoed as typed (`1e400`, not `inf`): see
  `mlserve.csv_hints.rejected_value`.
- Booleans are true/false or 1/0, any case, surrounding spaces ignored.
- Quotes are CSV quoting, removed by the reader before these rules see the text.
"""

from __future__ import annotations

from typing import Any

MISSING_TEXT = ""
FLOAT_TYPES = frozenset({"double", "float"})
INTEGER_TYPES = frozenset({"long", "integer"})
NUMERIC_TYPES = FLOAT_TYPES | INTEGER_TYPES
TRUE_STRINGS = frozenset({"true", "1"})
FALSE_STRINGS = frozenset({"false", "0"})


def empty_is_missing(column_type: str | None) -> bool:
    """Whether an empty cell of this column type is a missing value (not the text "")."""
    return column_type != "string"


def boolean_text(text: str) -> str:
    """The form of a cell compared with TRUE_STRINGS/FALSE_STRINGS."""
    return text.strip().lower()


def cell_value(text: str, column_type: str | None) -> Any:
    """One cell as the column type's value; None when missing; text that does not convert is
    returned as it is, for validation to reject naming the row and column."""
    if text == MISSING_TEXT and empty_is_missing(column_type):
        return None
    if column_type in NUMERIC_TYPES:
        if "_" in text:
            return text  # Python's float()/int() accept "1_000"; CSV numbers never have "_"
        try:
            return float(text) if column_type in FLOAT_TYPES else int(text)
        except ValueError:
            return text
    if column_type == "boolean":
        lowered = boolean_text(text)
        if lowered in TRUE_STRINGS:
            return True
        if lowered in FALSE_STRINGS:
            return False
    return text
