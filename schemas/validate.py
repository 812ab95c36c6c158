"""Validation at stage boundaries: good rows go on, failing rows come back with reasons.

Pandera reports failures per row index; we turn them into readable reasons and
split the frame, so a caller can quarantine the bad rows and keep the rest.
A frame whose *shape* is wrong (missing column, wrong type) is a programming or
source-contract error, not a bad row: it raises ``SchemaMismatch`` for the whole batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

_FRIENDLY = [
    (re.compile(r"^not_nullable$"), "is missing"),
    (re.compile(r"^field_uniqueness$"), "is not unique"),
    (re.compile(r"^multiple_fields_uniqueness$"), "is not unique"),
    (re.compile(r"^isin\((.*)\)$", re.S), "is not an allowed value"),
    (re.compile(r"^greater_than_or_equal_to\((.*)\)$"), r"must be >= \1"),
    (re.compile(r"^less_than_or_equal_to\((.*)\)$"), r"must be <= \1"),
    (re.compile(r"^str_matches\((.*)\)$"), r"does not match \1"),
    (re.compile(r"^str_length\((.*)\)$"), "has the wrong length"),
]

ROW_SCHEMA_CONTEXTS = {"Column", "DataFrameSchema"}


class SchemaMismatch(ValueError):
    """The frame itself does not have the model's shape (a column is missing or of the wrong type)."""


@dataclass(frozen=True)
class Validated:
    valid: pl.DataFrame
    failures: pl.DataFrame  # row (index into the input), column, value, reason

    @property
    def ok(self) -> bool:
        return self.failures.is_empty()


FAILURE_SCHEMA = {"row": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}


def _reason(check: str) -> str:
    for pattern, text in _FRIENDLY:
        if pattern.match(check):
            return pattern.sub(text, check)
    return check


def validate_rows(model: type[pa.DataFrameModel], frame: pl.DataFrame) -> Validated:
    """Validate every row; return the valid ones and one failure row per (row, column, check)."""
    try:
        model.validate(frame, lazy=True)
        return Validated(frame, pl.DataFrame(schema=FAILURE_SCHEMA))
    except SchemaError as exc:  # raised eagerly for dtype/column problems
        raise SchemaMismatch(f"{model.Config.name}: {exc}") from exc
    except SchemaErrors as exc:
        cases = exc.failure_cases
    not_row_level = cases.filter(
        pl.col("index").is_null() | ~pl.col("schema_context").is_in(ROW_SCHEMA_CONTEXTS)
    )
    if not not_row_level.is_empty():
        first = not_row_level.row(0, named=True)
        raise SchemaMismatch(
            f"{model.Config.name}: {first['column']}: {first['check']} ({first['failure_case']})"
        )
    failures = (
        cases.select(
            pl.col("index").cast(pl.Int64).alias("row"),
            pl.when(pl.col("schema_context") == "Column").then(pl.col("column")).alias("column"),
            pl.when(pl.col("schema_context") == "Column").then(pl.col("failure_case")).alias("value"),
            pl.col("check").map_elements(_reason, return_dtype=pl.String).alias("reason"),
        )
        .unique(maintain_order=True)
        .sort("row", "column", nulls_last=True, maintain_order=True)
    )
    bad_rows = failures.get_column("row").unique()
    valid = (
        frame.with_row_index("__row")
        .filter(~pl.col("__row").cast(pl.Int64).is_in(bad_rows.implode()))
        .drop("__row")
    )
    return Validated(valid, failures)


def require_valid(model: type[pa.DataFrameModel], frame: pl.DataFrame, what: str) -> pl.DataFrame:
    """For frames we built ourselves (journals): any failure is a bug, so say exactly where."""
    result = validate_rows(model, frame)
    if not result.ok:
        first = result.failures.row(0, named=True)
        row = frame.row(first["row"], named=True)
        raise ValueError(
            f"{what}: row {first['row']} ({row}) {first['column'] or ''} {first['reason']}".strip()
        )
    return result.valid
