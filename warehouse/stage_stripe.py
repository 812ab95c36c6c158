"""Staging of a Stripe source: its payouts become expected payouts (``open_item`` kind ``payout``)
for reconciliation; records of any Stripe table that cannot be read are quarantined in ``rejects``.

The fees of the balance transactions are booked per day (``warehouse.processor_fees``): a payout
arrives net of them. Charges, refunds and disputes stay in ``raw_<source>`` (they explain a payout).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import polars as pl

from schemas.tenant import Tenant
from sources.extract import dataset_name
from sources.stripe import COLUMNS
from transforms.processor_fees import FEE_SCHEMA
from transforms.stage_pms import REJECT_SCHEMA
from transforms.stage_stripe import check_records, daily_fees, payout_items
from warehouse import rejects as reject_store
from warehouse.db import query, table_exists, transaction
from warehouse.processor_fees import book_fees
from warehouse.staging import (
    StageResult,
    current_versions,
    loads_to_stage,
    mark_staged,
    replace_items,
    replace_staging_rejects,
)


def stage_stripe(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                 run_id: str, now: datetime) -> StageResult:
    """Stage this run's loads and any earlier one loaded but never staged, in one transaction:
    payout items replaced by their current versions, rejects brought up to date, loads marked."""
    settings = tenant.sources[source]
    load_ids = loads_to_stage(con, source, load_ids)
    raw_schema = dataset_name(source)
    raw = {table: current_versions(con, f"{raw_schema}.{table}", load_ids, within_load=None)
           for table in COLUMNS if load_ids and table_exists(con, raw_schema, table)}
    items = pl.DataFrame(schema={"item_id": pl.String})
    found = []
    for table, frame in raw.items():
        if table == "payouts":
            items, rejects = payout_items(frame, source=source, bank_account=settings.payout_bank_account)
        else:
            rejects = check_records(frame, table, source=source)[1]
        found.append(reject_store.with_ids(rejects, stage="staging", run_id=run_id, now=now))
    fees, fee_days = _fees_of_touched_days(con, tenant, source, raw.get("balance_transactions"))
    with transaction(con):
        book_fees(con, tenant, source, "Stripe", fees, fee_days, run_id=run_id, now=now)
        if items.height:
            replace_items(con, items)
        for table, current in zip(raw, found, strict=True):
            replace_staging_rejects(con, current, source=source, table=table,
                                    record_ids=raw[table].get_column("id").unique().sort().to_list(), run_id=run_id)
        mark_staged(con, source, load_ids, run_id=run_id, now=now)
    return StageResult(source=source, records=sum(frame.height for frame in raw.values()), items=items.height,
                       rejects=pl.concat(found) if found else pl.DataFrame(schema=REJECT_SCHEMA))


def _fees_of_touched_days(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str,
                          touched: pl.DataFrame | None) -> tuple[pl.DataFrame, set[date]]:
    """Every fee of the days the new balance transactions fall on (a day's entry is rebuilt whole)."""
    if touched is None or touched.is_empty():
        return pl.DataFrame(schema=FEE_SCHEMA), set()
    local = pl.col("created").dt.convert_time_zone(tenant.timezone).dt.date()
    days = set(touched.filter(pl.col("created").is_not_null()).select(local).to_series().to_list())
    if not days:
        return pl.DataFrame(schema=FEE_SCHEMA), set()
    table = f"{dataset_name(source)}.balance_transactions"
    first, last = min(days) - timedelta(days=1), max(days) + timedelta(days=2)  # every zone's day inside
    current = query(con, f"""
        SELECT * FROM {table} WHERE created >= ?::DATE AND created < ?::DATE
        QUALIFY dense_rank() OVER (PARTITION BY id ORDER BY _dlt_load_id DESC) = 1
    """, [first, last])
    fees = daily_fees(current, source=source, timezone=tenant.timezone, currency=tenant.currency)
    return fees.filter(pl.col("business_date").is_in(sorted(days))), days

