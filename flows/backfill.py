"""``backfill(tenant, start, end, period)``: close a past window, period by period, in order."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow

from schemas.tenant import load_tenant
from transforms.periods import last_complete_period, periods_between


@flow(name="backfill", flow_run_name="backfill {tenant} {period} {start}..{end}")
def backfill(tenant: str = "demo", start: date | None = None, end: date | None = None,
             period: Literal["day", "week", "month"] = "day"):
    """Extract the whole window once (everything posted in it, as the source has it now), build
    the journal of every day, then publish period after period to the destinations scheduled
    for that period (``day`` -> daily, ``week`` -> weekly, ``month`` -> monthly).

    Without ``start`` and ``end`` it closes the last complete period, which is what the weekly
    and monthly deployments do. Rerunning it (after a crash, or on purpose) writes nothing that
    is already there: published files are rewritten byte for byte and only what changed is added.
    """
    from flows.closing import open_business_date, run_close

    config = load_tenant(tenant)
    if (start is None) != (end is None):
        raise ValueError("give both start and end, or neither (the last complete period)")
    if start is None or end is None:
        last = last_complete_period(period, open_business_date(config))
        start, end = last.start, last.end
    return run_close(config, periods_between(start, end, period), window=True).final_state()
