"""Book a processor source's fees (``transforms.processor_fees``) as journal entries of that source,
versioned like every journal: a day already exported is reversed and booked again if its fees
change. Needs the tenant's ``[reconciliation]`` accounts (payout clearing, processor fee)."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tenant import Tenant
from transforms.processor_fees import FEE_SCHEMA, fee_journal_lines
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
