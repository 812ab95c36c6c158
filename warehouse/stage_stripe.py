"""Staging of a Stripe source: its payouts become expected payouts (``open_item`` kind ``payout``)
for reconciliation; records of any Stripe table that cannot be read are quarantined in ``rejects``.

Charges, refunds, disputes and balance transactions stay in ``raw_<source>`` (they explain a
payout; nothing is journalled from them yet).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from schemas.tables import OpenItem, StagedLoad
from schemas.tenant import Tenant
from sources.extract import dataset_name
from sources.stripe import COLUMNS
from transforms.stage_pms import REJECT_SCHEMA
from transforms.stage_stripe import check_records, payout_items
from warehouse import rejects as reject_store
from warehouse.db import insert, run, table_exists, transaction
from warehouse.staging import StageResult, current_versions, unstaged_loads


def stage_stripe(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, load_ids: list[str], *,
                 run_id: str, now: datetime) -> StageResult:
    """Stage this run's loads and any earlier one loaded but never staged, in one transaction:
    payout items replaced by their current versions, rejects brought up to date, loads marked."""
    settings = tenant.sources[source]
    load_ids = sorted(set(load_ids) | set(unstaged_loads(con, source)))
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
    with transaction(con):
        if items.height:
            run(con, "DELETE FROM open_item WHERE item_id IN (SELECT unnest(?::VARCHAR[]))",
                [items.get_column("item_id").to_list()])
            insert(con, OpenItem, items)
        for table, current in zip(raw, found, strict=True):
            reject_store.replace_open(
                con, current,
                scope_sql="stage = 'staging' AND source = ? AND table_name = ? AND record_id IN "
                          "(SELECT unnest(?::VARCHAR[]))",
                scope_params=[source, table, raw[table].get_column("id").unique().sort().to_list()], run_id=run_id)
        insert(con, StagedLoad, pl.DataFrame({"load_id": load_ids}, schema={"load_id": pl.String}).with_columns(
            pl.lit(source).alias("source"), pl.lit(run_id).alias("run_id"),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("staged_at")))
    rejects = pl.concat(found) if found else pl.DataFrame()
    return StageResult(source=source, records=sum(frame.height for frame in raw.values()), items=items.height,
                       rejects=rejects if rejects.height else pl.DataFrame(schema=REJECT_SCHEMA))
