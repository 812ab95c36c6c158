"""Staging of a training-management system: raw invoices, payments and refunds -> ``open_item``.

An invoice item depends on the invoice and on every payment of it, which may arrive in other
loads than the invoice; so staging re-reads, for every invoice a load touched (itself, or one of
its payments or refunds), the current version of the invoice and of all its payments and refunds,
and replaces their items in one transaction with the rejects and the ``staged_load`` marks.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from schemas.tenant import Tenant
from sources.extract import dataset_name
from sources.training import TABLES, arrow_schema
from transforms.stage_training import stage_training as stage_items
from warehouse import rejects as reject_store
from warehouse.db import query, run, table_exists, transaction
from warehouse.staging import StageResult, loads_to_stage, mark_staged, replace_items, replace_staging_rejects


def _empty(table: str) -> pl.DataFrame:
    frame = pl.from_arrow(arrow_schema(table).empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _ids(con, raw: str, table: str, where: str, params: list) -> list[str]:
    if not table_exists(con, raw, table):
        return []
    return [row[0] for row in run(con, f"SELECT DISTINCT id FROM {raw}.{table} WHERE {where}", params)]


def current_versions(con: duckdb.DuckDBPyConnection, source: str, table: str, ids: list[str]) -> pl.DataFrame:
    """The latest delivered version of each record (last load first, then latest ``updated_at``;
    ties are conflicting deliveries of one version and all come back, for staging to reject)."""
    raw = dataset_name(source)
    if not ids or not table_exists(con, raw, table):
        return _empty(table)
    columns = ", ".join(arrow_schema(table).names)
    frame = query(con, f"""
        SELECT {columns} FROM {raw}.{table} WHERE id IN (SELECT unnest(?::VARCHAR[]))
        QUALIFY dense_rank() OVER (PARTITION BY id ORDER BY _dlt_load_id DESC, updated_at DESC NULLS FIRST) = 1
        ORDER BY id, lf_record_hash
    """, [sorted(ids)])
    return frame.cast(_empty(table).schema)  # type: ignore[arg-type]


def touched(con: duckdb.DuckDBPyConnection, source: str, load_ids: list[str]) -> dict[str, list[str]]:
    """Record ids to restage: those the loads brought, and everything belonging to their invoices."""
    raw = dataset_name(source)
    in_loads = "_dlt_load_id IN (SELECT unnest(?::VARCHAR[]))"
    brought = {table: _ids(con, raw, table, in_loads, [load_ids]) for table in TABLES}
    invoices = set(brought["invoices"])
    for table in ("payments", "refunds"):
        if table_exists(con, raw, table):
            invoices |= {row[0] for row in run(con, f"SELECT DISTINCT invoice_id FROM {raw}.{table} WHERE {in_loads} "
                                                    "AND invoice_id IS NOT NULL", [load_ids])}
    ids = {"invoices": sorted(invoices)}
    for table in ("payments", "refunds"):
        ids[table] = sorted(set(brought[table]) | set(_ids(
            con, raw, table, "invoice_id IN (SELECT unnest(?::VARCHAR[]))", [ids["invoices"]])))
    return ids


def stage_training(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                   run_id: str, now: datetime) -> StageResult:
    """Stage the loads of this run and any earlier one that was loaded but never staged."""
    load_ids = loads_to_stage(con, source, load_ids)
    ids = touched(con, source, load_ids) if load_ids else {table: [] for table in TABLES}
    raw = {table: current_versions(con, source, table, ids[table]) for table in TABLES}
    settings = tenant.sources[source]
    pushed = frozenset(row[0] for row in run(
        con, "SELECT remote_id FROM training_payment_push WHERE source = ? AND remote_id IS NOT NULL", [source])
    ) if table_exists(con, "main", "training_payment_push") else frozenset()
    staged = stage_items(raw["invoices"], raw["payments"], raw["refunds"], source=source, timezone=tenant.timezone,
                         bank_account=getattr(settings, "bank_account", None), pushed=pushed)
    current_rejects = reject_store.with_ids(staged.rejects, stage="staging", run_id=run_id, now=now)
    with transaction(con):
        if staged.scope:
            replace_items(con, staged.items, staged.scope)
        for table in TABLES:
            if ids[table]:
                replace_staging_rejects(con, current_rejects.filter(pl.col("table_name") == table), source=source,
                                        table=table, record_ids=ids[table], run_id=run_id)
        mark_staged(con, source, load_ids, run_id=run_id, now=now)
    return StageResult(source=source, records=sum(frame.height for frame in raw.values()), items=staged.items.height,
                       rejects=current_rejects)
