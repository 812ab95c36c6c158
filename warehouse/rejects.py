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
from warehouse.db import insert, read_model, run


def _occurrence_id(problem_id: str, earlier: int) -> str:
    return hashlib.sha256(f"{problem_id}:{earlier}".encode()).hexdigest()[:24]


def _problem_id(row: dict) -> str:
    key = "\x1f".join(str(row.get(k) or "") for k in ("stage", "source", "table_name", "record_id",
                                                        "record_version", "column_name", "value", "reason",
                                                        "payload"))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def with_ids(frame: pl.DataFrame, *, stage: str, run_id: str, now: datetime) -> pl.DataFrame:
    """Problems as reject rows: ``problem_id`` names the problem; ``reject_id`` (given when the row is
    stored) names one occurrence of it, so a problem that comes back after being resolved is a new
    row and the old one keeps its history."""
    frame = frame.with_columns(pl.lit(stage).alias("stage"))
    problems = [_problem_id(row) for row in frame.iter_rows(named=True)]
    return frame.with_columns(
        pl.Series("problem_id", problems, dtype=pl.String),
        pl.Series("reject_id", [_occurrence_id(p, 0) for p in problems], dtype=pl.String),
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("rejected_at"),
        pl.lit(None, pl.String).alias("resolved_run_id"),
    ).unique("problem_id", keep="first", maintain_order=True)


def replace_open(con: duckdb.DuckDBPyConnection, current: pl.DataFrame, *, scope_sql: str, scope_params: list,
                 run_id: str) -> tuple[int, int]:
    """Make the open rejects inside a scope equal to ``current``: resolve the gone, add the new.

    Returns (added, resolved).
    """
    open_rows = dict(run(con, f"SELECT problem_id, reject_id FROM rejects WHERE resolved_run_id IS NULL "
                              f"AND ({scope_sql})", scope_params))
    current_ids = set(current.get_column("problem_id").to_list()) if not current.is_empty() else set()
    gone = sorted(reject for problem, reject in open_rows.items() if problem not in current_ids)
    if gone:
        run(con, "UPDATE rejects SET resolved_run_id = ? WHERE reject_id IN (SELECT unnest(?::VARCHAR[]))",
            [run_id, gone])
    fresh = current.filter(~pl.col("problem_id").is_in(sorted(open_rows))) if current_ids else current
    if fresh.height:
        earlier = dict(run(con, "SELECT problem_id, count(*) FROM rejects WHERE problem_id IN "
                                "(SELECT unnest(?::VARCHAR[])) GROUP BY problem_id",
                           [fresh.get_column("problem_id").to_list()]))
        fresh = fresh.with_columns(pl.Series("reject_id", [_occurrence_id(p, earlier.get(p, 0))
                                                           for p in fresh.get_column("problem_id")]))
    return insert(con, Reject, fresh), len(gone)


def open_rejects(con: duckdb.DuckDBPyConnection, source: str | None = None) -> pl.DataFrame:
    where, params = "resolved_run_id IS NULL", []
    if source:
        where, params = where + " AND source = ?", [source]
    return read_model(con, Reject, where, params, order_by="business_date NULLS FIRST, record_id, column_name")


def held_back(con: duckdb.DuckDBPyConnection, sources) -> dict[str, set[date]]:
    """Source -> business days with open rejects: they are held back from export."""
    days: dict[str, set[date]] = {source: set() for source in sources}
    for source, day in run(con, "SELECT DISTINCT source, business_date FROM rejects WHERE resolved_run_id IS NULL "
                                "AND business_date IS NOT NULL"):
        if source in days:
            days[source].add(day)
    return days
