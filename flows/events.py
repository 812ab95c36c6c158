"""Events that start runs: a new bank file or a new invoice dropped into a tenant's inbox.

``ledgerflow reconcile drop`` (and any script or sFTP hook that calls ``drop``) puts the file
in the inbox atomically, then emits a Prefect event; the reconcile deployment's trigger in
``prefect.yaml`` turns it into a run of that tenant. Without a Prefect server the file still
waits in the inbox for the next scheduled run: nothing is lost.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from schemas.tenant import Tenant

EVENTS = {"bank": "ledgerflow.bank-file.received", "items": "ledgerflow.invoice.received"}


def event_name(kind: str) -> str:
    return EVENTS[kind]


def tenant_resource(tenant_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"ledgerflow.tenant.{tenant_id}", "prefect.resource.name": tenant_id}


def drop(tenant: Tenant, kind: str, file: Path, *, emit: bool = True) -> tuple[Path, bool]:
    """Copy ``file`` into ``<inbox>/<kind>/`` under its own name (temporary name, then rename),
    and emit the event. Returns (path in the inbox, whether the event was emitted)."""
    if kind not in EVENTS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(EVENTS)}")
    folder = tenant.inbox_path() / kind
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(file).name
    temporary = folder / f".{target.name}.{os.getpid()}.part"
    shutil.copyfile(file, temporary)
    os.replace(temporary, target)
    emitted = False
    if emit:
        from prefect.events import emit_event

        emitted = emit_event(event=event_name(kind), resource=tenant_resource(tenant.id),
                             payload={"file": target.name}) is not None
    return target, emitted


def waiting_bank_files(tenant: Tenant) -> dict[str, list[str]]:
    """Source -> statement files waiting in its folder or sFTP inbox (loaded files are moved out,
    so whatever waits is new). A source that cannot be reached is left for the reconcile run
    to report."""
    from flows.bank_intake import store_for
    from schemas.tenant import BankFilesSource
    from sources.bank_files.stores import StoreError

    waiting: dict[str, list[str]] = {}
    for name, settings in sorted(tenant.sources.items()):
        if not isinstance(settings, BankFilesSource):
            continue
        try:
            with store_for(tenant, settings) as store:
                names = store.names()
        except StoreError:
            names = ["(unreachable: the reconcile run reports why)"]
        if names:
            waiting[name] = names
    return waiting


def announce_bank_files(tenant: Tenant, *, emit: bool = True) -> tuple[dict[str, list[str]], bool]:
    """Emit ``ledgerflow.bank-file.received`` when statement files wait in a bank source; the
    reconcile deployment's trigger turns it into one run (a burst makes one run)."""
    waiting = waiting_bank_files(tenant)
    emitted = False
    if waiting and emit:
        from prefect.events import emit_event

        emitted = emit_event(event=event_name("bank"), resource=tenant_resource(tenant.id),
                             payload={"files": {k: v[:50] for k, v in waiting.items()}}) is not None
    return waiting, emitted
