"""The ``rejects`` table: quarantined records with the reason, never deleted.

A reject stays *open* until a later run, looking at the same scope (the same
source records, or the same business day for journal-stage rejects), no longer
finds it; it is then marked with that run's id. Recording the same problem again
adds no row, so reruns leave the table as it was. Business days with open rejects
are held back from export.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tables import Reject
from warehouse.db import insert, query, read_model, run


def _reject_id(row: dict) -> str:
    key = "\x1f".join(str(row.get(k) or "") for k in ("stage", "source", "table_name", "record_id",
                                                        "record_version", "column_name", "value", "reason",
                                                        "payload"))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def with_ids(frame: pl.DataFrame, *, stage: str, run_id: str, now: datetime) -> pl.DataFrame:
    frame = frame.with_columns(pl.lit(stage).alias("stage"))
    ids = [_reject_id(row) for row in frame.iter_rows(named=True)]
    return frame.with_columns(
        pl.Series("reject_id", ids, dtype=pl.String),
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("rejected_at"),
        pl.lit(None, pl.String).alias("resolved_run_id"),
    ).unique("reject_id", keep="first", maintain_order=True)


def replace_open(con: duckdb.DuckDBPyConnection, current: pl.DataFrame, *, scope_sql: str, scope_params: list,
                 run_id: str) -> tuple[int, int]:
    """Make the open rejects inside a scope equal to ``current``: resolve the gone, add the new.

    Returns (added, resolved).
    """
    open_ids = set(query(con, f"SELECT reject_id FROM rejects WHERE resolved_run_id IS NULL AND ({scope_sql})",
                         scope_params).get_column("reject_id").to_list())
    current_ids = set(current.get_column("reject_id").to_list()) if not current.is_empty() else set()
    gone = sorted(open_ids - current_ids)
    if gone:
        run(con, "UPDATE rejects SET resolved_run_id = ? WHERE reject_id IN (SELECT unnest(?::VARCHAR[]))",
            [run_id, gone])
    fresh = current.filter(~pl.col("reject_id").is_in(sorted(open_ids))) if current_ids else current
    return insert(con, Reject, fresh), len(gone)


def open_rejects(con: duckdb.DuckDBPyConnection, source: str | None = None) -> pl.DataFrame:
    where, params = "resolved_run_id IS NULL", []
    if source:
        where, params = where + " AND source = ?", [source]
    return read_model(con, Reject, where, params, order_by="business_date NULLS FIRST, record_id, column_name")


def held_back_dates(con: duckdb.DuckDBPyConnection, source: str) -> set[date]:
    rows = run(con, "SELECT DISTINCT business_date FROM rejects WHERE resolved_run_id IS NULL AND source = ? "
               "AND business_date IS NOT NULL", [source])
    return {row[0] for row in rows}
