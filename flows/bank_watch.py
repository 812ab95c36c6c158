"""``watch_bank_files(tenant)``: look into the tenant's statement inboxes (folders, sFTP) every
few minutes and announce new files, so a statement is reconciled soon after the bank drops it
instead of at the next scheduled run. Only looks: the reconcile run takes the files."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.events import announce_bank_files
from schemas.tenant import load_tenant


@flow(name="watch-bank-files", flow_run_name="watch bank files of {tenant}")
def watch_bank_files(tenant: str = "demo") -> dict[str, list[str]]:
    config = load_tenant(tenant)
    waiting, emitted = announce_bank_files(config)
    log = get_run_logger()
    for source, names in waiting.items():
        log.info("%s: %d file(s) waiting: %s", source, len(names), ", ".join(names[:10]))
    if waiting and emitted:
        log.info("announced: the reconcile deployment's trigger starts a run")
    return waiting
