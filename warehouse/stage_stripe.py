"""Staging of a Stripe source: its payouts become expected payouts (``open_item`` kind ``payout``)
for reconciliation; records of any Stripe table that cannot be read are quarantined in ``rejects``.

The fees of the balance transactions are booked per day (``warehouse.processor_fees``): a payout
arrives net of them. Charges, refunds and disputes stay in ``raw_<source>`` (they explain a payout).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from schemas.tenant import Tenant
from sources.extract import dataset_name
from sources.stripe import COLUMNS
from transforms.stage_pms import REJECT_SCHEMA
from transforms.stage_stripe import check_records, daily_fees, payout_items
from warehouse import rejects as reject_store
from warehouse.db import table_exists, transaction
from warehouse.processor_fees import book_fees, fees_of_touched_days
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
    fees, fee_days = fees_of_touched_days(
        con, tenant, f"{dataset_name(source)}.balance_transactions", "created", raw.get("balance_transactions"),
        lambda frame: daily_fees(frame, source=source, timezone=tenant.timezone, currency=tenant.currency))
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
