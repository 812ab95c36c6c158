"""Events that start runs: a new bank file, a new invoice or a webhook arriving for a tenant.

``ledgerflow reconcile drop`` (and any script or sFTP hook that calls ``drop``) puts the file
in the inbox atomically, the webhook receiver (``flows/webhooks.py``) stores each event in
``<inbox>/webhooks/``; then ``request_run`` asks for a reconcile run of that tenant. Without a
Prefect server the file still waits in the inbox for the next scheduled run: nothing is lost.

A burst (fifty webhooks in a second, a folder of statements) makes one run: the first event
writes ``<data_dir>/events/run-requested.json`` and starts a run; the next ones, while that
request is unclaimed, only add their reason to it. The run calls ``claim_run_request`` before it
reads the inbox, so an event arriving after the claim (which that read may have missed) starts
another run. A request nobody claimed for ``STALE_AFTER`` (the run was lost: no worker, a crash)
is started again by the next event.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.tenant import Tenant

EVENTS = {"bank": "ledgerflow.bank-file.received", "items": "ledgerflow.invoice.received"}
TRIGGERS = {"bank": "bank-file", "items": "invoice"}  # the reconcile run's ``trigger`` for each kind
WEBHOOK_EVENT = "ledgerflow.webhook.received"
STALE_AFTER = timedelta(minutes=15)
REASONS_KEPT = 50  # a marker lists the first reasons of a burst and counts the rest

log = logging.getLogger("ledgerflow.events")


def event_name(kind: str) -> str:
    return EVENTS[kind]


def tenant_resource(tenant_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"ledgerflow.tenant.{tenant_id}", "prefect.resource.name": tenant_id}


# --- run requests: a burst of events makes one run ------------------------------------------------

@dataclass(frozen=True)
class RunReason:
    """Why a run is asked for: the Prefect event that says so, the reconcile run's ``trigger``
    parameter, and what arrived (file names, a webhook's id)."""

    event: str
    trigger: str
    payload: dict = field(default_factory=dict)


# (tenant, reason, request id) -> whether a run was handed over; may raise when it could not be
Starter = Callable[[Tenant, RunReason, str], bool]


@dataclass(frozen=True)
class RunRequest:
    """``started``: this event started a run; ``pending``: it joined a run already asked for;
    ``waiting``: no run could be asked for (no starter, or the start failed), the next scheduled
    run takes what arrived."""

    outcome: str
    request_id: str | None = None

    @property
    def requested(self) -> bool:
        return self.outcome in ("started", "pending")


def events_path(tenant: Tenant) -> Path:
    return tenant.data_path() / "events"


@contextmanager
def _locked(tenant: Tenant) -> Iterator[Path]:
    """The tenant's events folder, held by one process and thread at a time (the receiver's
    threads, ``drop`` from a shell and the run claiming all read-modify-write the marker)."""
    folder = events_path(tenant)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "run-request.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_json(path: Path, document: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "run-requested.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # only os.replace writes it, so this is someone's hand edit: start afresh
        log.warning("%s is not JSON: a new run is requested", folder / "run-requested.json")
        return None


def request_run(tenant: Tenant, reason: RunReason, starter: Starter | None, *, now: datetime | None = None,
                stale_after: timedelta = STALE_AFTER) -> RunRequest:
    """Ask for one run of ``tenant`` for ``reason``; the first event of a burst starts it through
    ``starter``, the others join it. Never raises for a failed start: what arrived is stored."""
    if starter is None:
        return RunRequest("waiting")
    now = now or datetime.now(UTC)
    entry = {"at": now.isoformat(), "event": reason.event, **reason.payload}
    with _locked(tenant) as folder:
        marker = _read_marker(folder)
        if marker is not None and now - datetime.fromisoformat(marker["requested_at"]) <= stale_after:
            marker["events"] += 1
            if len(marker["reasons"]) < REASONS_KEPT:
                marker["reasons"].append(entry)
            _write_json(folder / "run-requested.json", marker)
            return RunRequest("pending", marker["request_id"])
        if marker is not None:
            log.warning("tenant %s: the run requested at %s (%s) was never claimed: requesting another",
                        tenant.id, marker["requested_at"], marker["request_id"])
        request_id = uuid.uuid4().hex
        _write_json(folder / "run-requested.json", {"request_id": request_id, "requested_at": now.isoformat(),
                                                    "trigger": reason.trigger, "events": 1, "reasons": [entry]})
    if _start(starter, tenant, reason, request_id):
        return RunRequest("started", request_id)
    with _locked(tenant) as folder:  # let the next event try again, unless it already did
        marker = _read_marker(folder)
        if marker is not None and marker["request_id"] == request_id:
            (folder / "run-requested.json").unlink()
    return RunRequest("waiting", request_id)


def _start(starter: Starter, tenant: Tenant, reason: RunReason, request_id: str) -> bool:
    try:
        started = starter(tenant, reason, request_id)
    except Exception as exc:  # noqa: BLE001 - what arrived is stored; the schedule is the fallback
        log.warning("tenant %s: no run could be started (%s: %s): the next scheduled run takes it",
                    tenant.id, type(exc).__name__, exc)
        return False
    if not started:
        log.warning("tenant %s: no Prefect server reachable: the next scheduled run takes it", tenant.id)
    return started


def claim_run_request(tenant: Tenant, run_id: str, *, now: datetime | None = None) -> dict | None:
    """Called by a run before it reads the inbox: takes the pending request (returned, with the
    reasons that asked for it, or None) so that any later event asks for a new run. The last
    claim is kept in ``run-claimed.json`` to see which run took which events."""
    with _locked(tenant) as folder:
        marker = _read_marker(folder)
        if marker is None:
            return None
        marker.update(claimed_by=run_id, claimed_at=(now or datetime.now(UTC)).isoformat())
        _write_json(folder / "run-claimed.json", marker)
        (folder / "run-requested.json").unlink()
    return marker


def emit_starter(tenant: Tenant, reason: RunReason, request_id: str) -> bool:
    """Emit the reason's Prefect event: the reconcile deployment's trigger in ``prefect.yaml``
    turns it into a run. False when no Prefect server is reachable."""
    from prefect.events import emit_event

    return emit_event(event=reason.event, resource=tenant_resource(tenant.id),
                      payload={**reason.payload, "run_request": request_id}) is not None


def deployment_starter(deployment: str) -> Starter:
    """Create a run of ``deployment`` ("flow/deployment", e.g. ``reconcile/demo-reconcile-daily``)
    at once, without waiting for it; the request id is its idempotency key, so a start retried
    after a time-out is still one run."""

    def start(tenant: Tenant, reason: RunReason, request_id: str) -> bool:
        from prefect.deployments import run_deployment

        run_deployment(deployment, parameters={"tenant": tenant.id, "trigger": reason.trigger}, timeout=0,
                       idempotency_key=f"ledgerflow-run-request-{request_id}")
        return True

    return start


def starter_from(spec: str) -> Starter | None:
    """``prefect:<flow>/<deployment>``, ``event`` or ``none`` (the inbox waits for the schedule)."""
    if spec == "none":
        return None
    if spec == "event":
        return emit_starter
    kind, _, deployment = spec.partition(":")
    if kind == "prefect" and deployment.count("/") == 1 and all(deployment.split("/")):
        return deployment_starter(deployment)
    raise ValueError(f"starter {spec!r}: expected prefect:<flow>/<deployment> (e.g. "
                     "prefect:reconcile/demo-reconcile-daily), event or none")


# --- files in the inbox ---------------------------------------------------------------------------

def drop(tenant: Tenant, kind: str, file: Path, *, emit: bool = True) -> tuple[Path, bool]:
    """Copy ``file`` into ``<inbox>/<kind>/`` under its own name (temporary name, then rename),
    and emit the event (once per burst: see ``request_run``). Returns (path in the inbox, whether
    a run is asked for)."""
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
        reason = RunReason(event_name(kind), TRIGGERS[kind], {"file": target.name})
        emitted = request_run(tenant, reason, emit_starter).requested
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
        reason = RunReason(event_name("bank"), TRIGGERS["bank"], {"files": {k: v[:50] for k, v in waiting.items()}})
        emitted = request_run(tenant, reason, emit_starter).requested
    return waiting, emitted


# --- webhook events: taken by the run that pulled their source ---------------------------------------

def waiting_events(tenant: Tenant, source: str) -> list[Path]:
    """Webhook events of ``source`` stored by the receiver and not yet settled by a pull."""
    folder = tenant.inbox_path() / "webhooks" / source
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def settle_events(tenant: Tenant, source: str, events: list[Path], run_id: str) -> int:
    """After a pull of ``source`` that started after these events arrived (so it saw what they
    announce), move them to ``processed/`` with the run that settled them: the inbox shows what
    no pull has covered yet, and the trail which run took which event."""
    folder = tenant.inbox_path() / "webhooks" / source / "processed"
    folder.mkdir(parents=True, exist_ok=True)
    moved = 0
    for path in events:
        if path.exists():
            os.replace(path, folder / path.name)
            moved += 1
    if moved:
        with open(folder / "settled.log", "a", encoding="utf-8") as log_file:
            log_file.writelines(f"{run_id}\t{path.name}\n" for path in events)
    return moved
