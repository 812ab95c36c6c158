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
