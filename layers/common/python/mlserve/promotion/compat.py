"""Is a new model's signature a drop-in replacement for the live one?

Breaking (refused unless the promotion says `force`):
  - an input column the live model has is gone (clients send it; /predict would reject it),
  - an input column changed type,
  - a new required input column (clients do not send it yet),
  - the output type changed.
Compatible: a new optional column, a column that became optional, identical signatures.
"""

from __future__ import annotations

from typing import Any

from mlserve.mlmodel import ModelSpec

# Widening numeric changes a client cannot notice (it sends JSON numbers either way).
COMPATIBLE_TYPES = {
    ("integer", "long"),
    ("float", "double"),
    ("integer", "double"),
    ("long", "double"),
    ("integer", "float"),
}


def _output_types(spec: ModelSpec) -> list[str | None]:
    return [str(o.get("type")) if isinstance(o, dict) else None for o in (spec.outputs or [])]


def signature_changes(live: ModelSpec, new: ModelSpec) -> tuple[list[str], list[str]]:
    """(breaking, compatible) human-readable changes from `live` to `new`."""
    breaking: list[str] = []
    compatible: list[str] = []
    old_cols = {c.name: c for c in live.inputs}
    new_cols = {c.name: c for c in new.inputs}
    for name, old in old_cols.items():
        col = new_cols.get(name)
        if col is None:
            breaking.append(f"input column {name!r} was removed")
        elif col.type != old.type:
            change = f"input column {name!r} changed type {old.type} -> {col.type}"
            (compatible if (old.type, col.type) in COMPATIBLE_TYPES else breaking).append(change)
        elif col.required and not old.required:
            breaking.append(f"input column {name!r} became required")
        elif old.required and not col.required:
            compatible.append(f"input column {name!r} became optional")
    for name, col in new_cols.items():
        if name not in old_cols:
            (breaking if col.required else compatible).append(
                f"new {'required' if col.required else 'optional'} input column {name!r}"
            )
    old_out, new_out = _output_types(live), _output_types(new)
    if old_out and new_out and old_out != new_out:
        breaking.append(f"output type changed {old_out} -> {new_out}")
    return breaking, compatible


def describe(breaking: list[str], compatible: list[str]) -> dict[str, Any]:
    return {"breaking": breaking, "compatible": compatible, "compatible_with_live": not breaking}
