"""Staging of a PayPal source: raw transactions -> expected payouts in ``open_item`` (+ rejects), and
the fees PayPal kept as a daily journal (``warehouse.processor_fees``): withdrawals arrive net of them."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from schemas.tenant import Tenant
from sources.extract import dataset_name
from transforms.stage_paypal import daily_fees
from transforms.stage_paypal import stage_paypal as stage_transactions
from transforms.stage_pms import REJECT_SCHEMA
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


def stage_paypal(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                 run_id: str, now: datetime) -> StageResult:
    """Stage the loads of this run and any earlier one loaded but never staged, in one transaction:
    the touched transactions' payout items are replaced by what their valid current versions say,
    their rejects brought up to date, and the loads marked staged."""
    load_ids = loads_to_stage(con, source, load_ids)
    raw_schema = dataset_name(source)
    current = (current_versions(con, f"{raw_schema}.transactions", load_ids)
               if load_ids and table_exists(con, raw_schema, "transactions") else None)
    staged = None
    if current is not None and not current.is_empty():
        staged = stage_transactions(current, source=source, bank_account=tenant.sources[source].payout_bank_account)
        touched = current.get_column("id").unique().sort().to_list()
    fees, fee_days = fees_of_touched_days(
        con, tenant, f"{dataset_name(source)}.transactions", "initiated_at", current,
        lambda frame: daily_fees(frame, timezone=tenant.timezone, currency=tenant.currency),
        within_load="updated_at DESC NULLS FIRST")
    with transaction(con):
        book_fees(con, tenant, source, "PayPal", fees, fee_days, run_id=run_id, now=now)
        current_rejects = pl.DataFrame(schema=REJECT_SCHEMA)
        if staged is not None:
            # Only items with a new valid version are replaced: a refused version leaves the last good
            # one (a match may point at it), and its reject alerts.
            replace_items(con, staged.items)
            current_rejects = reject_store.with_ids(staged.rejects, stage="staging", run_id=run_id, now=now)
            replace_staging_rejects(con, current_rejects, source=source, table="transactions", record_ids=touched,
                                    run_id=run_id)
        mark_staged(con, source, load_ids, run_id=run_id, now=now)
    return StageResult(source=source, records=current.height if current is not None else 0,
                       items=staged.items.height if staged else 0, rejects=current_rejects)
