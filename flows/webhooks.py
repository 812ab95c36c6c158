"""The webhook receiver: ``POST /webhooks/{tenant}/{source}`` takes signed events from a tenant's
systems (the training system today), keeps each one in the inbox and asks for a run.

A request is taken when, in this order: the source is one of the tenant's with a webhook secret
(404), the body is at most ``MAX_BODY_BYTES`` (413), the secret's variable is set (503: the
sender retries later), the signature matches and is recent (``sources.webhooks``; 401), the body
is a UTF-8 JSON object with a string ``type`` and an ``id`` that is safe as a file name (400).
Every refusal is logged at WARNING with its reason and kept in ``<inbox>/webhooks/rejected/``:
the body as received (its first ``KEPT_BODY_BYTES``: unsigned requests must not fill the disk)
and a ``.json`` beside it (reason, status, headers without secrets, time).

An event id already taken is not taken again, and answered ``200 {"status": "duplicate"}``:
the sender's retry of an event whose answer it lost must stop being retried (senders retry every
non-2xx for days, then switch the endpoint off), and a captured request replayed within the
signature's tolerance gets nothing from a 200 either: nothing is stored, no run is asked for.
The same id with another body is a 409 (a sender bug worth seeing on its side). Ids taken are
remembered as files in ``<data_dir>/events/webhooks-seen/<source>/`` (created exclusively, so
two concurrent copies cannot both be taken), which survives restarts whatever consumes the inbox.

An event taken is written to ``<inbox>/webhooks/<source>/<event id>.json`` (temporary name, then
rename) as ``{"received_at", "tenant", "source", "event": <the body as sent>}``, then
``flows.events.request_run`` asks for one run per burst.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flows.events import WEBHOOK_EVENT, RunReason, Starter, events_path, request_run
from schemas.tenant import Tenant
from sources.http_audit import SECRET_NAME
from sources.webhooks import DEFAULT_TOLERANCE_SECONDS, SignatureRefused, verify

SIGNATURE_HEADERS = {"training": "X-Training-Signature"}  # source type -> the header its system signs in
MAX_BODY_BYTES = 1_000_000
KEPT_BODY_BYTES = 65_536
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # no '/', '\', '..' start, control chars

log = logging.getLogger("ledgerflow.webhooks")


class Refused(Exception):
    """A request that is not taken: its HTTP status and the reason, for the sender and the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def now_utc() -> datetime:
    return datetime.now(UTC)


def create_app(tenant: Tenant, starter: Starter | None, *, clock: Callable[[], datetime] = now_utc,
               environ: Mapping[str, str] = os.environ, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
               max_body: int = MAX_BODY_BYTES) -> Starlette:
    """The receiver of one tenant; ``starter`` (see ``flows.events.starter_from``) starts runs."""

    async def receive(request: Request) -> JSONResponse:
        received_at = clock()
        source = request.path_params["source"]
        received = bytearray()
        try:
            body = await _read_body(request, received, max_body)
            header = _signature_header(tenant, request.path_params["tenant"], source)
            secret = _secret(tenant, source, environ)
            try:
                verify(secret, body, request.headers.get(header), received_at, tolerance)
            except SignatureRefused as exc:
                raise Refused(401, f"signature refused: {exc}") from None
            event = _parse_event(body)
            answer = await run_in_threadpool(_take, tenant, source, body, event, received_at, starter)
        except Refused as refused:
            kept = _keep_rejected(tenant, request, source, bytes(received), refused, received_at)
            log.warning("webhook %s refused (%d): %s; kept as %s", request.url.path, refused.status, refused.reason,
                        kept)
            answer = {"status": "duplicate", "detail": refused.reason} if refused.status == 200 else {
                "error": refused.reason}
            return JSONResponse(answer, status_code=refused.status)
        return JSONResponse(answer)

    return Starlette(routes=[Route("/webhooks/{tenant}/{source}", receive, methods=["POST"])])


def _signature_header(tenant: Tenant, tenant_id: str, source: str) -> str:
    if tenant_id != tenant.id:
        raise Refused(404, f"tenant {tenant_id!r} is not served here (this receiver serves {tenant.id!r})")
    settings = tenant.sources.get(source)
    if settings is None or not getattr(settings, "webhook_secret_env", None) or settings.type not in SIGNATURE_HEADERS:
        raise Refused(404, f"tenant {tenant.id} has no source {source!r} that sends webhooks")
    return SIGNATURE_HEADERS[settings.type]


async def _read_body(request: Request, received: bytearray, max_body: int) -> bytes:
    """The body, read into ``received`` as it comes; an oversized one is read only as far as it is
    kept for inspection."""
    declared = request.headers.get("content-length", "")
    too_big = declared.isdigit() and int(declared) > max_body
    async for chunk in request.stream():
        received += chunk
        if too_big and len(received) >= KEPT_BODY_BYTES:
            break
        if len(received) > max_body:
            too_big = True
            break
    if too_big:
        raise Refused(413, f"body of {declared or 'over ' + str(max_body)} bytes: at most {max_body} are taken")
    return bytes(received)


def _secret(tenant: Tenant, source: str, environ: Mapping[str, str]) -> str:
    variable = tenant.sources[source].webhook_secret_env
    secret = environ.get(variable)
    if not secret:
        raise Refused(503, f"the webhook secret of source {source} is not configured: set {variable} "
                           "for the receiver (the sender retries later)")
    return secret


def _parse_event(body: bytes) -> dict:
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(400, f"body is not UTF-8 JSON: {exc}") from None
    if not isinstance(event, dict):
        raise Refused(400, f"body is JSON but not an object: {type(event).__name__}")
    for key in ("id", "type"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise Refused(400, f"event {key!r}: expected a non-empty string, got {event.get(key)!r:.80}")
    if not SAFE_ID.fullmatch(event["id"]) or ".." in event["id"]:
        raise Refused(400, f"event id {event['id']!r:.140}: expected letters, digits and _.:- (at most 128), "
                           "it names the event's file")
    return event


def _take(tenant: Tenant, source: str, body: bytes, event: dict, received_at: datetime,
          starter: Starter | None) -> dict:
    """Remember the id (exclusively), store the event, ask for a run; the answer to the sender."""
    digest = hashlib.sha256(body).hexdigest()
    seen = events_path(tenant) / "webhooks-seen" / source / event["id"]
    seen.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(seen, "x", encoding="utf-8") as mark:
            mark.write(f"{digest} {received_at.isoformat()}\n")
    except FileExistsError:
        first = seen.read_text(encoding="utf-8").split()
        if first and first[0] != digest:
            raise Refused(409, f"event {event['id']} was taken at {first[1]} with another body") from None
        raise Refused(200, f"event {event['id']} was taken at {first[1] if first else '?'}: a sender retry "
                           "or a replay, not taken again") from None
    try:
        path = _store(tenant, source, body, event["id"], received_at)
    except OSError:
        seen.unlink()  # not stored: the sender's retry must be taken
        raise
    run = request_run(tenant, RunReason(WEBHOOK_EVENT, "webhook", {"source": source, "id": event["id"],
                                                                   "type": event["type"]}), starter, now=received_at)
    log.info("webhook %s %s (%s) stored as %s; run %s", source, event["id"], event["type"], path, run.outcome)
    return {"status": "accepted", "id": event["id"], "run": run.outcome}


def _store(tenant: Tenant, source: str, body: bytes, event_id: str, received_at: datetime) -> Path:
    folder = tenant.inbox_path() / "webhooks" / source
    folder.mkdir(parents=True, exist_ok=True)
    envelope = json.dumps({"received_at": received_at.isoformat(), "tenant": tenant.id, "source": source})
    target = folder / f"{event_id}.json"
    temporary = folder / f".{event_id}.{uuid.uuid4().hex[:8]}.part"
    temporary.write_bytes(envelope[:-1].encode() + b', "event": ' + body + b"}\n")
    os.replace(temporary, target)
    return target


def _keep_rejected(tenant: Tenant, request: Request, source: str, body: bytes, refused: Refused,
                   received_at: datetime) -> Path:
    folder = tenant.inbox_path() / "webhooks" / "rejected"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{received_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    kept = body[:KEPT_BODY_BYTES]
    (folder / f"{stem}.body").write_bytes(kept)
    sidecar = {"reason": refused.reason, "status": refused.status, "path": request.url.path, "source": source,
               "received_at": received_at.isoformat(), "body_bytes": len(body), "body_kept_bytes": len(kept),
               "client": request.client.host if request.client else None,
               "headers": _safe_headers(request)}
    temporary = folder / f".{stem}.json.part"
    temporary.write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, folder / f"{stem}.json")
    return folder / f"{stem}.body"


def _safe_headers(request: Request) -> dict[str, str]:
    """Headers as received, without credentials; a signature (whatever the source: the request may
    have the wrong path) keeps only its timestamp, enough to see a wrong clock, not to replay."""
    headers = {}
    for name, value in request.headers.items():
        if "signature" in name:
            headers[name] = ",".join(part if part.strip().startswith("t=") else "(redacted)"
                                     for part in value.split(","))
        elif SECRET_NAME.search(name):  # what the HTTP audit log hides
            headers[name] = "(redacted)"
        else:
            headers[name] = value
    return headers


def serve(tenant: Tenant, starter: Starter | None, *, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Serve the receiver until interrupted. Ids are taken exclusively on disk and run requests are
    locked, so several processes may serve the same tenant behind one proxy."""
    import uvicorn

    uvicorn.run(create_app(tenant, starter), host=host, port=port, log_level="warning", lifespan="off",
                access_log=False)
