"""Staging of an accounting-entries source: the remote entries a run brought -> our journal entries.

Unlike a PMS, whose rows become a day's journal at the close, the entries arrive already
journalled: staging writes them to ``journal_entry``/``journal_line`` itself (source = the
source's name), so the tenant's destinations export them like any other entry. What is looked
at: every remote entry the run's loads (and any load never staged) touched, and every one still
refused (so that adding an account to the chart or to ``accounts`` releases it at the next run).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from schemas.tables import JournalLine
from schemas.tenant import Tenant
from sources.extract import dataset_name
from transforms.stage_entries import (
    STORED_SCHEMA,
    TABLE,
    ImportPlan,
    built_lines,
    check_entries,
    plan_imports,
    remote_id_pattern,
)
from warehouse import rejects as reject_store
from warehouse.db import query, read_model, run, table_exists, transaction
from warehouse.journals import store_entries
from warehouse.staging import StageResult, loads_to_stage, mark_staged, replace_staging_rejects


def _still_refused(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [row[0] for row in run(con, "SELECT DISTINCT record_id FROM rejects WHERE resolved_run_id IS NULL AND "
                                       "stage = 'staging' AND source = ? AND table_name = ?", [source, TABLE])]


def current_entries(con: duckdb.DuckDBPyConnection, source: str, load_ids: list[str],
                    also: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(headers, lines) of the latest version of every remote entry the loads touched, plus ``also``.

    Latest = delivered by the last load; within one load, built last by the sender.
    """
    raw = dataset_name(source)
    if not table_exists(con, raw, "entries"):
        return pl.DataFrame(), pl.DataFrame()
    current = f"""
        WITH touched AS (
            SELECT entry_id FROM {raw}.entries WHERE _dlt_load_id IN (SELECT unnest(?::VARCHAR[]))
            UNION SELECT unnest(?::VARCHAR[])
        )
        SELECT e.* FROM {raw}.entries e SEMI JOIN touched USING (entry_id)
        QUALIFY row_number() OVER (PARTITION BY e.entry_id ORDER BY e._dlt_load_id DESC,
                                   e.created_at DESC NULLS FIRST, e.lf_record_hash) = 1
    """
    entries = query(con, current + " ORDER BY entry_id", [load_ids, also])
    if entries.is_empty() or not table_exists(con, raw, "entry_lines"):
        return entries, pl.DataFrame()
    lines = query(con, f"""
        WITH current AS ({current})
        SELECT l.* FROM {raw}.entry_lines l SEMI JOIN current c USING (entry_id, lf_record_hash)
        ORDER BY l.entry_id, l.line_no
    """, [load_ids, also])
    return entries, lines


def stored_entries(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str,
                   remote_ids: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Our entries of these remote entries (STORED_SCHEMA), and the lines of the exported ones."""
    prefix, suffix = remote_id_pattern(tenant.id, source)
    entries = query(con, """
        SELECT * FROM (
            SELECT e.entry_id, e.business_date, e.entry_date, e.version, e.kind, e.reverses, e.content_hash,
                   e.line_count, regexp_replace(substr(e.entry_id, length(?) + 1), ?, '') AS remote_id,
                   EXISTS (SELECT 1 FROM export_log x WHERE x.object_type = 'journal_entry'
                           AND x.object_id = e.entry_id) AS exported
            FROM journal_entry e WHERE e.tenant = ? AND e.source = ? AND starts_with(e.entry_id, ?)
        ) WHERE remote_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY remote_id, version, entry_id
    """, [prefix, suffix, tenant.id, source, prefix, remote_ids]).cast(STORED_SCHEMA)  # type: ignore[arg-type]
    exported = entries.filter(pl.col("exported")).get_column("entry_id").to_list()
    lines = read_model(con, JournalLine, "entry_id IN (SELECT unnest(?::VARCHAR[]))", [exported],
                       order_by="entry_id, line_no")
    return entries, lines


def plan_stage(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str,
               load_ids: list[str]) -> tuple[ImportPlan, list[str]]:
    """What staging these loads writes, and the remote ids it looked at (the rejects' scope)."""
    settings = tenant.sources[source]
    accounts, journal_code = settings.accounts, settings.journal_code
    chart = tenant.account_names
    entries, lines = current_entries(con, source, load_ids, _still_refused(con, source))
    scope = entries.get_column("entry_id").to_list() if entries.height else []
    accepted, rejects = check_entries(entries, lines, chart=chart, accounts=accounts, journal_code=journal_code,
                                      tenant=tenant.id, source=source, currency=tenant.currency)
    ours = built_lines(accepted, lines, chart=chart, accounts=accounts, journal_code=journal_code)
    stored, stored_lines = stored_entries(con, tenant, source, scope)
    plan = plan_imports(tenant=tenant.id, source=source, entries=accepted, lines=ours, stored_entries=stored,
                        stored_lines=stored_lines, closed_through=tenant.closed_through, rejects=rejects)
    return plan, scope


def stage_entries(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                  run_id: str, now: datetime) -> StageResult:
    """Stage this run's loads and any loaded but never staged, in one transaction: journal entries
    written (new, corrected, reversed), rejects brought up to date, loads marked staged."""
    load_ids = loads_to_stage(con, source, load_ids)
    plan, scope = plan_stage(con, tenant, source, load_ids)
    rejects = reject_store.with_ids(plan.rejects, stage="staging", run_id=run_id, now=now)
    with transaction(con):
        store_entries(con, tenant, source, plan.entries, plan.lines, plan.delete_entry_ids, run_id=run_id, now=now)
        replace_staging_rejects(con, rejects, source=source, table=TABLE, record_ids=scope, run_id=run_id)
        mark_staged(con, source, load_ids, run_id=run_id, now=now)
    return StageResult(source=source, records=len(scope), entries=plan.entries.height, rejects=rejects)
