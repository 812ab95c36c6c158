"""Journal step: sum the canonical tables in DuckDB, build the journals, store new versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tables import ClosedDay, JournalEntry, JournalLine
from schemas.tenant import Tenant
from schemas.validate import require_valid
from transforms.journal import DailyJournals, build_daily_journals
from transforms.versions import ENTRY_SCHEMA, VersionPlan, plan_versions
from warehouse import rejects as reject_store
from warehouse.db import insert, query, read_model, run, transaction


def _in_days(dates: list[date], column: str = "business_date") -> tuple[str, list]:
    """SQL condition (and parameters) for ``column`` being one of ``dates``: a plain range when
    the days are contiguous (the usual close or backfill), which DuckDB prunes with zone maps."""
    first, last = min(dates), max(dates)
    if len(set(dates)) == (last - first).days + 1:
        return f"{column} BETWEEN ? AND ?", [first, last]
    return f"{column} BETWEEN ? AND ? AND {column} IN (SELECT unnest(?::DATE[]))", [first, last, sorted(set(dates))]


def sales_totals(con: duckdb.DuckDBPyConnection, source: str, dates: list[date]) -> pl.DataFrame:
    # DuckDB sums DECIMAL(18,2) into DECIMAL(38,2); cast back to the canonical money type.
    condition, params = _in_days(dates)
    return query(con, f"""
        SELECT business_date, category, vat_rate, sum(amount)::DECIMAL(18,2) AS amount, count(*) AS lines
        FROM sales_line WHERE source = ? AND {condition}
        GROUP BY ALL ORDER BY ALL
    """, [source, *params])


def payment_totals(con: duckdb.DuckDBPyConnection, source: str, dates: list[date]) -> pl.DataFrame:
    condition, params = _in_days(dates)
    return query(con, f"""
        SELECT business_date, kind, method, partner_id, max(partner_name) AS partner_name,
               sum(amount)::DECIMAL(18,2) AS amount, count(*) AS lines
        FROM payment WHERE source = ? AND {condition}
        GROUP BY business_date, kind, method, partner_id ORDER BY ALL
    """, [source, *params])


def build_from_db(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, dates: list[date]) -> DailyJournals:
    """The journals of ``dates`` as the canonical tables say now (what the benchmark times)."""
    return build_daily_journals(sales_totals(con, source, dates), payment_totals(con, source, dates), tenant)


def stored_entries(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str,
                   dates: list[date]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Entries of these days with an ``exported`` flag, and the lines of the exported ones."""
    condition, params = _in_days(dates, "e.business_date")
    entries = query(con, f"""
        SELECT e.entry_id, e.business_date, e.entry_date, e.version, e.kind, e.reverses, e.content_hash,
               e.line_count, EXISTS (SELECT 1 FROM export_log x WHERE x.object_type = 'journal_entry'
                                     AND x.object_id = e.entry_id) AS exported
        FROM journal_entry e WHERE e.tenant = ? AND e.source = ? AND {condition}
        ORDER BY e.business_date, e.version, e.entry_id
    """, [tenant.id, source, *params])
    entries = entries.cast({**ENTRY_SCHEMA, "exported": pl.Boolean})  # type: ignore[arg-type]
    exported_ids = entries.filter(pl.col("exported")).get_column("entry_id").to_list()
    lines = read_model(con, JournalLine, "entry_id IN (SELECT unnest(?::VARCHAR[]))", [exported_ids],
                       order_by="entry_id, line_no")
    return entries, lines


def closed_days(con: duckdb.DuckDBPyConnection, source: str, dates: list[date]) -> set[date]:
    if not dates:
        return set()
    condition, params = _in_days(dates)
    rows = run(con, f"SELECT business_date FROM closed_day WHERE source = ? AND {condition}", [source, *params])
    return {row[0] for row in rows}


@dataclass(frozen=True)
class JournalResult:
    source: str
    dates: list[date]  # days built
    inserted: int  # entries written (drafts, reversals, corrections)
    deleted: int  # superseded drafts removed
    reversed: list[str]  # exported entries reversed by this run
    unchanged: int  # days whose stored entries already matched
    suspense: pl.DataFrame
    rejects: pl.DataFrame


def _journal_lines(plan: VersionPlan, journal_code: str, source: str) -> pl.DataFrame:
    return plan.lines.with_columns(
        pl.lit(journal_code).alias("journal_code"),
        pl.format("{}-{}", pl.lit(source.upper()), pl.col("business_date").dt.strftime("%Y%m%d")).alias("document_ref"),
    ).select(list(JournalLine.to_schema().columns))


def plan_days(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, built: pl.DataFrame,
              days: list[date]) -> VersionPlan:
    """What to write so that the stored entries of ``days`` equal ``built`` (DESIGN invariants 3, 4)."""
    entries, exported_lines = stored_entries(con, tenant, source, days)
    return plan_versions(tenant=tenant.id, source=source, built=built, dates=days, stored_entries=entries,
                         stored_lines=exported_lines, closed_through=tenant.closed_through)


def write_plan(con: duckdb.DuckDBPyConnection, plan: VersionPlan, tenant: Tenant, source: str, journal_code: str, *,
               run_id: str, now: datetime) -> None:
    """Store a plan inside the caller's transaction: drafts replaced, new versions inserted."""
    lines = _journal_lines(plan, journal_code, source) if not plan.entries.is_empty() else pl.DataFrame()
    store_entries(con, tenant, source, plan.entries, lines, plan.delete_entry_ids, run_id=run_id, now=now)


def store_entries(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, entries: pl.DataFrame,
                  lines: pl.DataFrame, delete_entry_ids: list[str], *, run_id: str, now: datetime) -> None:
    """Inside the caller's transaction: drafts ``delete_entry_ids`` removed (never an exported
    entry), ``entries`` and their ``lines`` inserted, stamped with the run."""
    if not lines.is_empty():
        require_valid(JournalLine, lines, f"journal of {source}")  # a failure here is a bug: refuse to store
    if delete_entry_ids:
        exported = run(con, "SELECT count(*) FROM export_log WHERE object_type = 'journal_entry' AND object_id IN "
                       "(SELECT unnest(?::VARCHAR[]))", [delete_entry_ids])[0][0]
        if exported:  # DESIGN invariant 4; the plans never ask for this
            raise RuntimeError("refusing to delete an exported journal entry")
        for table in ("journal_line", "journal_entry"):
            run(con, f"DELETE FROM {table} WHERE entry_id IN (SELECT unnest(?::VARCHAR[]))", [delete_entry_ids])
    insert(con, JournalEntry, entries.with_columns(
        pl.lit(tenant.id).alias("tenant"), pl.lit(source).alias("source"), pl.lit(run_id).alias("run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("created_at")))
    insert(con, JournalLine, lines)


def days_to_rebuild(con: duckdb.DuckDBPyConnection, source: str) -> tuple[set[date], set[date]]:
    """(pending days noted by staging, days held back by journal-stage rejects).

    Pending days are rebuilt if they were closed before; a day held back because the mapping
    could not post it is rebuilt on every close, so that fixing the mapping releases it.
    """
    pending = {row[0] for row in run(con, "SELECT business_date FROM pending_day WHERE source = ?", [source])}
    rejected = {row[0] for row in run(con, "SELECT DISTINCT business_date FROM rejects WHERE stage = 'journal' "
                                           "AND source = ? AND resolved_run_id IS NULL", [source])}
    return pending, rejected


def close_days(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, dates: list[date], *,
               run_id: str, now: datetime) -> JournalResult:
    """(Re)build the journals of ``dates``, of closed days a change touched since, and of days held
    back by the mapping; store what changed as new versions and clear the pending days."""
    pending, rejected = days_to_rebuild(con, source)
    days = sorted(set(dates) | closed_days(con, source, sorted(pending)) | rejected)
    journals = build_from_db(con, tenant, source, days)
    plan = plan_days(con, tenant, source, journals.lines, days)
    journal_rejects = reject_store.with_ids(
        journals.rejects.select(
            pl.lit(source).alias("source"), pl.lit("sales_line").alias("table_name"),
            pl.format("{}/{}@{}", pl.col("business_date"), pl.col("code"), pl.col("vat_rate")).alias("record_id"),
            pl.lit(None, pl.String).alias("record_version"), "business_date",
            pl.lit("vat_rate").alias("column_name"), pl.col("vat_rate").cast(pl.String).alias("value"),
            pl.format("{} ({} lines, {} gross) left out of the entry", pl.col("reason"), pl.col("lines"),
                      pl.col("amount")).alias("reason"),
            pl.lit(None, pl.String).alias("payload")),
        stage="journal", run_id=run_id, now=now)
    with transaction(con):
        write_plan(con, plan, tenant, source, tenant.mapping.journal_code, run_id=run_id, now=now)
        condition, params = _in_days(days)
        reject_store.replace_open(con, journal_rejects, scope_sql=f"stage = 'journal' AND source = ? AND {condition}",
                                  scope_params=[source, *params], run_id=run_id)
        if pending:
            run(con, "DELETE FROM pending_day WHERE source = ? AND business_date IN (SELECT unnest(?::DATE[]))",
                [source, sorted(pending)])
        known = closed_days(con, source, days)
        insert(con, ClosedDay, pl.DataFrame({"business_date": [d for d in days if d not in known]},
                                            schema={"business_date": pl.Date}).with_columns(
            pl.lit(source).alias("source"), pl.lit(run_id).alias("first_run_id"),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("closed_at")))
    return JournalResult(source=source, dates=days, inserted=plan.entries.height, deleted=len(plan.delete_entry_ids),
                         reversed=plan.reversed, unchanged=len(days) - len(plan.changed_dates), suspense=journals.suspense,
                         rejects=journal_rejects)


def entry_lines(con: duckdb.DuckDBPyConnection, tenant: Tenant, start: date, end: date) -> pl.DataFrame:
    """Every stored journal line dated in [start, end] (originals, reversals, corrections)."""
    return read_model(con, JournalLine, "entry_date BETWEEN ? AND ? AND entry_id IN "
                      "(SELECT entry_id FROM journal_entry WHERE tenant = ?)", [start, end, tenant.id],
                      order_by="entry_date, entry_id, line_no")
