"""``daily_close(tenant, business_date)``: close one hotel day and export it to the daily destinations."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from schemas.tenant import load_tenant
from transforms.periods import Period


@flow(name="daily-close", flow_run_name="daily-close {tenant} {business_date}")
def daily_close(tenant: str = "demo", business_date: date | None = None):
    """Extract what changed since the last run, stage it, build the journal of ``business_date``
    (default: the last business day that is over in the tenant's time zone), re-close any
    earlier day a late change touched, and publish to the tenant's *daily* destinations.

    ``tenant`` is an id (``tenants/<id>.toml``) or a path to a tenant TOML file.
    """
    from flows.closing import open_business_date, run_close

    config = load_tenant(tenant)
    day = business_date or open_business_date(config) - timedelta(days=1)
    return run_close(config, [Period(day, day, "day")], window=False).final_state()
