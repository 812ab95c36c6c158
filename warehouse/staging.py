"""Staging: the raw rows a run brought -> canonical ``sales_line`` and ``payment`` (+ rejects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tables import Payment, SalesLine
from schemas.tenant import Tenant
from sources.extract import dataset_name
from transforms.stage_pms import REJECT_SCHEMA, stage_pms
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, table_exists, transaction

CANONICAL = {"charges": (SalesLine, "sales_line"), "payments": (Payment, "payment")}


@dataclass(frozen=True)
class StageResult:
    source: str
    records: int  # current versions looked at
    sales_lines: int
    payments: int
    voided: int
    rejects: pl.DataFrame  # this run's rejects for these records (REJECT_SCHEMA + ids)
    touched_dates: list[date]  # business days whose content may have changed


def _current_versions(con: duckdb.DuckDBPyConnection, raw_table: str, load_ids: list[str]) -> pl.DataFrame:
    """The latest delivered version of every record the given loads touched.

    Latest = last load first, then latest ``updated_at`` (a version whose time was
    unreadable counts as newest of its load). Ties are conflicting deliveries of
    one version and are all returned, for staging to reject.
    """
    return query(con, f"""
        WITH touched AS (
            SELECT DISTINCT id FROM {raw_table} WHERE _dlt_load_id IN (SELECT unnest(?::VARCHAR[]))
        )
        SELECT r.* FROM {raw_table} AS r SEMI JOIN touched USING (id)
        QUALIFY dense_rank() OVER (PARTITION BY r.id ORDER BY r._dlt_load_id DESC, r.updated_at DESC NULLS FIRST) = 1
        ORDER BY r.id, r.lf_record_hash
    """, [load_ids])


def stage_source(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                 run_id: str, now: datetime) -> StageResult:
    raw_schema = dataset_name(source)
    raw: dict[str, pl.DataFrame] = {}
    for table in CANONICAL:
        exists = load_ids and table_exists(con, raw_schema, table)
        raw[table] = _current_versions(con, f"{raw_schema}.{table}", load_ids) if exists else pl.DataFrame(
            {"id": []}, schema={"id": pl.String})
    staged = stage_pms(raw["charges"], raw["payments"], source=source, currency=tenant.currency,
                       timezone=tenant.timezone, cutoff=tenant.business_day_cutoff)
    current_rejects = reject_store.with_ids(staged.rejects, stage="staging", run_id=run_id, now=now)

    touched: set[date] = set()
    with transaction(con):
        for table, (model, canonical) in CANONICAL.items():
            ids = raw[table].get_column("id").unique().to_list()
            if not ids:
                continue
            con.register("__ids", pl.DataFrame({"source_id": ids}).to_arrow())
            touched |= {r[0] for r in run(
                con, f"SELECT DISTINCT business_date FROM {canonical} WHERE source = ? AND source_id IN "
                "(SELECT source_id FROM __ids)", [source])}
            run(con, f"DELETE FROM {canonical} WHERE source = ? AND source_id IN (SELECT source_id FROM __ids)",
                [source])
            con.unregister("__ids")
            rows = staged.sales_lines if table == "charges" else staged.payments
            insert(con, model, rows)
            touched |= set(rows.get_column("business_date").unique().to_list())
            scope = pl.DataFrame({"record_id": ids}).to_arrow()
            con.register("__scope", scope)
            reject_store.replace_open(
                con, current_rejects.filter(pl.col("table_name") == table),
                scope_sql="stage = 'staging' AND source = ? AND table_name = ? AND record_id IN "
                          "(SELECT record_id FROM __scope)",
                scope_params=[source, table], run_id=run_id)
            con.unregister("__scope")
    touched |= {d for d in staged.rejects.get_column("business_date").to_list() if d is not None}
    return StageResult(
        source=source,
        records=raw["charges"].height + raw["payments"].height,
        sales_lines=staged.sales_lines.height,
        payments=staged.payments.height,
        voided=staged.voided.height,
        rejects=current_rejects if not current_rejects.is_empty() else pl.DataFrame(schema=REJECT_SCHEMA),
        touched_dates=sorted(touched),
    )
