"""Book a processor source's fees (``transforms.processor_fees``) as journal entries of that source,
versioned like every journal: a day already exported is reversed and booked again if its fees
change. Needs the tenant's ``[reconciliation]`` accounts (payout clearing, processor fee)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import duckdb
import polars as pl

from schemas.tenant import Tenant
from transforms.processor_fees import FEE_SCHEMA, fee_journal_lines
from warehouse.db import query
from warehouse.journals import plan_days, write_plan


def book_fees(con: duckdb.DuckDBPyConnection, tenant: Tenant, source: str, processor: str, fees: pl.DataFrame,
              days: set[date], *, run_id: str, now: datetime) -> int:
    """Inside the caller's transaction: the fee entries of ``days`` made equal to ``fees`` (every
    fee of those days, FEE_SCHEMA, in the books' currency). Returns the entries written."""
    recon = tenant.reconciliation
    if recon is None or not days:
        return 0
    fee_account = recon.accounts.processor_fee or recon.accounts.bank_fee
    built = fee_journal_lines(fees.cast(FEE_SCHEMA), processor=processor, fee_account=fee_account,  # type: ignore[arg-type]
                              clearing_account=recon.accounts.payout, account_names=tenant.account_names)
    plan = plan_days(con, tenant, source, built, sorted(days))
    write_plan(con, plan, tenant, source, recon.journal_code, run_id=run_id, now=now)
    return plan.entries.height


def fees_of_touched_days(con: duckdb.DuckDBPyConnection, tenant: Tenant, raw_table: str, time_column: str,
                         touched: pl.DataFrame | None, daily_fees: Callable[[pl.DataFrame], pl.DataFrame], *,
                         within_load: str | None = None) -> tuple[pl.DataFrame, set[date]]:
    """Every fee (``daily_fees`` of the current raw records) of the local days the ``touched``
    records fall on, and those days: a day's entry is rebuilt whole, whichever load brought what."""
    if touched is None or touched.is_empty():
        return pl.DataFrame(schema=FEE_SCHEMA), set()
    local = pl.col(time_column).dt.convert_time_zone(tenant.timezone).dt.date()
    days = set(touched.filter(pl.col(time_column).is_not_null()).select(local).to_series().to_list())
    if not days:
        return pl.DataFrame(schema=FEE_SCHEMA), set()
    first, last = min(days) - timedelta(days=1), max(days) + timedelta(days=2)  # every zone's day inside
    order = "_dlt_load_id DESC" + (f", {within_load}" if within_load else "")
    current = query(con, f"""
        SELECT * FROM {raw_table} WHERE {time_column} >= ?::DATE AND {time_column} < ?::DATE
        QUALIFY dense_rank() OVER (PARTITION BY id ORDER BY {order}) = 1
    """, [first, last])
    return daily_fees(current).filter(pl.col("business_date").is_in(sorted(days))), days

