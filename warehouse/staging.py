"""Staging: the raw rows a run brought -> canonical ``sales_line`` and ``payment`` (+ rejects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tables import OpenItem, Payment, PendingDay, SalesLine, StagedLoad
from schemas.tenant import Tenant
from sources.extract import dataset_name, registered
from transforms.stage_pms import REJECT_SCHEMA, stage_pms
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, table_exists, transaction

CANONICAL = {"charges": (SalesLine, "sales_line"), "payments": (Payment, "payment")}


@dataclass(frozen=True)
class StageResult:
    source: str
    records: int  # current versions looked at
    sales_lines: int = 0
    payments: int = 0
    voided: int = 0
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))  # + ids
    items: int = 0  # open_item rows written (processor payouts, billing invoices, payments, refunds)
    entries: int = 0  # journal entries taken as they are (accounting-entries sources)

    def __post_init__(self) -> None:
        if self.rejects.is_empty():  # one shape for "no rejects", whatever the stager had at hand
            object.__setattr__(self, "rejects", pl.DataFrame(schema=REJECT_SCHEMA))


# What every stager does around its own work: take the loads an earlier run left unstaged too,
# bring the open staging rejects of the records it looked at up to date, and mark the loads staged,
# all in the caller's transaction so that a run dying in between leaves the loads for the next.

def loads_to_stage(con: duckdb.DuckDBPyConnection, source: str, load_ids: list[str]) -> list[str]:
    return sorted(set(load_ids) | set(unstaged_loads(con, source)))


def replace_staging_rejects(con: duckdb.DuckDBPyConnection, rejects: pl.DataFrame, *, source: str, table: str,
                            record_ids: list[str], run_id: str) -> None:
    """The open staging rejects of ``record_ids`` (of ``table``) become ``rejects`` (with ids)."""
    con.register("__scope", pl.DataFrame({"record_id": record_ids}, schema={"record_id": pl.String}).to_arrow())
    try:
        reject_store.replace_open(
            con, rejects, scope_sql="stage = 'staging' AND source = ? AND table_name = ? AND record_id IN "
                                    "(SELECT record_id FROM __scope)", scope_params=[source, table], run_id=run_id)
    finally:
        con.unregister("__scope")


def mark_staged(con: duckdb.DuckDBPyConnection, source: str, load_ids: list[str], *, run_id: str,
                now: datetime) -> None:
    insert(con, StagedLoad, pl.DataFrame({"load_id": load_ids}, schema={"load_id": pl.String}).with_columns(
        pl.lit(source).alias("source"), pl.lit(run_id).alias("run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("staged_at")))


def replace_items(con: duckdb.DuckDBPyConnection, items: pl.DataFrame, item_ids: list[str] | None = None) -> None:
    """Open items ``item_ids`` (default: those of ``items``) replaced by ``items``: an item is its
    source's latest word (what matches applied to it stays in the match trail)."""
    ids = items.get_column("item_id").to_list() if item_ids is None else item_ids
    if ids:
        run(con, "DELETE FROM open_item WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    insert(con, OpenItem, items)


# source type -> "module:function(con, tenant, source, load_ids, *, run_id, now) -> StageResult"
STAGERS = {
    "demo_pms": "warehouse.staging:stage_source",
    "rest_pms": "warehouse.staging:stage_source",
    "stripe": "warehouse.stage_stripe:stage_stripe",
    "paypal": "warehouse.stage_paypal:stage_paypal",
    "training": "warehouse.stage_training:stage_training",
    "entries_api": "warehouse.stage_entries:stage_entries",
}


def stager(source_type: str):
    return registered(STAGERS, source_type, "stager")


def current_versions(con: duckdb.DuckDBPyConnection, raw_table: str, load_ids: list[str], *,
                     within_load: str | None = "r.updated_at DESC NULLS FIRST") -> pl.DataFrame:
    """The latest delivered version of every record the given loads touched.

    Latest = last load first, then ``within_load`` (default: latest ``updated_at``, a version whose
    time was unreadable counting as newest of its load; None for systems whose records carry no
    change time). Ties are conflicting deliveries of one version and are all returned, for
    staging to reject.
    """
    order = "r._dlt_load_id DESC" + (f", {within_load}" if within_load else "")
    return query(con, f"""
        WITH touched AS (
            SELECT DISTINCT id FROM {raw_table} WHERE _dlt_load_id IN (SELECT unnest(?::VARCHAR[]))
        )
        SELECT r.* FROM {raw_table} AS r SEMI JOIN touched USING (id)
        QUALIFY dense_rank() OVER (PARTITION BY r.id ORDER BY {order}) = 1
        ORDER BY r.id, r.lf_record_hash
    """, [load_ids])


def unstaged_loads(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """Completed dlt loads of ``source`` not staged yet (a run may have died between the two steps)."""
    loads = f"{dataset_name(source)}._dlt_loads"
    if not table_exists(con, dataset_name(source), "_dlt_loads"):
        return []
    rows = run(con, f"SELECT load_id FROM {loads} WHERE status = 0 AND load_id NOT IN "
                    "(SELECT load_id FROM staged_load WHERE source = ?) ORDER BY load_id", [source])
    return [row[0] for row in rows]


def _old_days(con: duckdb.DuckDBPyConnection, canonical: str, source: str) -> pl.DataFrame:
    """Business days the records being restaged had until now (``__ids`` holds their ids)."""
    return query(con, f"SELECT source_id AS record_id, business_date FROM {canonical} WHERE source = ? "
                      "AND source_id IN (SELECT source_id FROM __ids)", [source])


def stage_source(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                 run_id: str, now: datetime) -> StageResult:
    """Stage the loads of this run and any earlier one that was loaded but never staged.

    In one transaction: the records' canonical rows are replaced by their current versions, their
    rejects brought up to date, the loads marked staged, and every business day they touched (old
    and new) noted in ``pending_day`` for the journal step.
    """
    load_ids = loads_to_stage(con, source, load_ids)
    raw_schema = dataset_name(source)
    raw: dict[str, pl.DataFrame] = {}
    for table in CANONICAL:
        exists = load_ids and table_exists(con, raw_schema, table)
        raw[table] = current_versions(con, f"{raw_schema}.{table}", load_ids) if exists else pl.DataFrame(
            {"id": []}, schema={"id": pl.String})
    staged = stage_pms(raw["charges"], raw["payments"], source=source, currency=tenant.currency,
                       timezone=tenant.timezone, cutoff=tenant.business_day_cutoff)
    ids = {table: raw[table].get_column("id").unique().to_list() for table in CANONICAL}

    touched: set[date] = set()
    with transaction(con):
        old_days = []
        for table, (model, canonical) in CANONICAL.items():
            if not ids[table]:
                continue
            con.register("__ids", pl.DataFrame({"source_id": ids[table]}, schema={"source_id": pl.String}).to_arrow())
            old = _old_days(con, canonical, source)
            old_days.append(old.with_columns(pl.lit(table).alias("table_name")))
            run(con, f"DELETE FROM {canonical} WHERE source = ? AND source_id IN (SELECT source_id FROM __ids)",
                [source])
            con.unregister("__ids")
            rows = staged.sales_lines if table == "charges" else staged.payments
            insert(con, model, rows)
            touched |= set(old.get_column("business_date").to_list()) | set(rows.get_column("business_date").to_list())
        # A refused version whose own day cannot be read still holds back the day the record had.
        known = (pl.concat(old_days).rename({"business_date": "old_day"}) if old_days
                 else pl.DataFrame(schema={"record_id": pl.String, "old_day": pl.Date, "table_name": pl.String}))
        rejects = staged.rejects.join(known, on=["table_name", "record_id"], how="left").with_columns(
            pl.coalesce("business_date", "old_day").alias("business_date")).drop("old_day")
        current_rejects = reject_store.with_ids(rejects, stage="staging", run_id=run_id, now=now)
        for table in CANONICAL:
            if ids[table]:
                replace_staging_rejects(con, current_rejects.filter(pl.col("table_name") == table), source=source,
                                        table=table, record_ids=ids[table], run_id=run_id)
        touched |= {d for d in rejects.get_column("business_date").to_list() if d is not None}
        mark_staged(con, source, load_ids, run_id=run_id, now=now)
        note_pending_days(con, source, touched, run_id)
    return StageResult(
        source=source,
        records=raw["charges"].height + raw["payments"].height,
        sales_lines=staged.sales_lines.height,
        payments=staged.payments.height,
        voided=staged.voided.height,
        rejects=current_rejects,
    )


def note_pending_days(con: duckdb.DuckDBPyConnection, source: str, days: set[date], run_id: str) -> None:
    known = {row[0] for row in run(con, "SELECT business_date FROM pending_day WHERE source = ?", [source])}
    fresh = sorted(days - known)
    insert(con, PendingDay, pl.DataFrame({"business_date": fresh}, schema={"business_date": pl.Date}).with_columns(
        pl.lit(source).alias("source"), pl.lit(run_id).alias("noted_by_run")))
