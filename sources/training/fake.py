"""A stateful fake of a training-management system's API on 127.0.0.1, and its webhook sender.

No official description of such an API exists; this is the shape ``sources.training`` and
``sources.training.push`` are written against (Bearer token, JSON, money as decimal strings):

    GET /api/v1/invoices | /api/v1/payments | /api/v1/refunds
        updated_since=ISO   records whose current version changed at or after this instant
        updated_before=ISO  ... and before this instant
        limit=N             page size (1..500, default 100)
        page_token=T        from the previous page's ``next_page_token``
    -> {"data": [...], "next_page_token": "..." | null}
    GET /api/v1/invoices/{id}                 -> the invoice
    PATCH /api/v1/invoices/{id}               If-Match: <version>   {"po_number"?, "due_date"?}
        -> 200 the new invoice | 412 the version moved | 428 no If-Match | 409 the invoice is void
    GET /api/v1/invoices/{id}/payments        -> {"data": [the invoice's payments]}
    POST /api/v1/invoices/{id}/payments       Idempotency-Key: <key>
        {"amount", "currency", "method", "paid_at", "reference"}
        -> 201 the payment (``source`` "ledgerflow") | 409 the invoice is void
        The same key again -> the same answer, nothing recorded twice; the same key with another
        body -> 422.

    Invoice: id, number, booking_id, course, customer {id, name, email, iban?}, issue_date, due_date,
             po_number, currency, total, status (draft|open|paid|partially_paid|void), version
             (bumps on every change), updated_at
    Payment: id, invoice_id, amount, currency, method, paid_at, reference, source, updated_at
    Refund:  id, invoice_id, amount, currency, refunded_at, reason, updated_at

Every request needs ``Authorization: Bearer <token>``; a wrong, expired or revoked token is a
401. Pages are ordered by (updated_at, id) and the page token is a key, not an offset.
Knobs for tests: ``faults`` (the next matching requests answer 429 + Retry-After or a 5xx),
``token_revoked``, ``add_raw`` (a record as a broken system might send it), ``change_invoice``
(a change made by someone in the system). The store's clock moves one second per change, so
every version has its own ``updated_at``.

Webhooks: ``WebhookSender`` POSTs events to a URL, signed as ``sources.webhooks`` describes in
the ``X-Training-Signature`` header; body ``{"id": "evt_…", "type": "invoice.created|
invoice.updated|payment.created|refund.created", "created": unix, "data": {"object": {...}}}``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sources.local_server import Fault, LocalServer, guarded

TOKEN = "trn_test_5f3b2c0e9a"
RESOURCES = ("invoices", "payments", "refunds")
MAX_LIMIT = 500
SIGNATURE_HEADER = "X-Training-Signature"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


class TrainingStore:
    """The system's current state: one current version per record, plus the events it emitted."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 8, 0, tzinfo=UTC), token: str = TOKEN) -> None:
        self.token = token
        self.token_revoked = False
        self.clock = start
        self.records: dict[str, dict[str, tuple[datetime, dict]]] = {name: {} for name in RESOURCES}
        self.faults: list[Fault] = []
        self.events: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.idempotent: dict[str, tuple[str, int, dict]] = {}  # key -> (body digest, status, answer)
        self._lock = threading.RLock()
        self._counter = 0

    # --- state set-up (what people do in the system) -----------------------------------------

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def _put(self, resource: str, record: dict, event: str | None) -> dict:
        self.records[resource][str(record["id"])] = (_parse_instant(record["updated_at"]) or self.clock, record)
        if event:
            self._counter += 1
            self.events.append({"id": f"evt_{self._counter:06d}", "type": event,
                                "created": int(self.clock.timestamp()), "data": {"object": dict(record)}})
        return record

    def add_invoice(self, number: str, total: str, *, customer: str = "Acme Training Buyers Ltd",
                    currency: str = "EUR", issue_date: date = date(2026, 3, 2), due_days: int = 30,
                    status: str = "open", po_number: str | None = None, iban: str | None = None) -> dict:
        with self._lock:
            invoice_id = f"inv_{len(self.records['invoices']) + 1:05d}"
            customer_id = "cus_" + "".join(c for c in customer.lower() if c.isalnum())[:12]
            record = {
                "id": invoice_id, "number": number, "booking_id": f"bk_{invoice_id[4:]}",
                "course": "Advanced bookkeeping (3 days)",
                "customer": {"id": customer_id, "name": customer, "email": f"ap@{customer_id[4:]}.example",
                             **({"iban": iban} if iban else {})},
                "issue_date": issue_date.isoformat(), "due_date": (issue_date + timedelta(days=due_days)).isoformat(),
                "po_number": po_number, "currency": currency, "total": total, "status": status, "version": 1,
                "updated_at": _instant(self._tick()),
            }
            return self._put("invoices", record, "invoice.created")

    def change_invoice(self, invoice_id: str, **changes) -> dict:
        """A change made in the system (by its users): the version bumps, updated_at moves."""
        with self._lock:
            record = dict(self.records["invoices"][invoice_id][1])
            record.update(changes, version=record["version"] + 1, updated_at=_instant(self._tick()))
            return self._put("invoices", record, "invoice.updated")

    def add_payment(self, invoice_id: str, amount: str, *, method: str = "card", source: str = "desk",
                    reference: str | None = None, currency: str | None = None, paid_at: str | None = None) -> dict:
        with self._lock:
            invoice = self.invoice(invoice_id)
            moment = self._tick()
            record = {"id": f"pay_{len(self.records['payments']) + 1:05d}", "invoice_id": invoice_id,
                      "amount": amount, "currency": currency or invoice["currency"], "method": method,
                      "paid_at": paid_at or _instant(moment), "reference": reference, "source": source,
                      "updated_at": _instant(moment)}
            self._put("payments", record, "payment.created")
            self._settle(invoice_id)
            return record

    def add_refund(self, invoice_id: str, amount: str, reason: str = "cancelled course") -> dict:
        with self._lock:
            invoice = self.invoice(invoice_id)
            moment = self._tick()
            record = {"id": f"ref_{len(self.records['refunds']) + 1:05d}", "invoice_id": invoice_id,
                      "amount": amount, "currency": invoice["currency"], "refunded_at": _instant(moment),
                      "reason": reason, "updated_at": _instant(moment)}
            return self._put("refunds", record, "refund.created")

    def add_raw(self, resource: str, record: dict, visible_at: datetime | None = None) -> None:
        """A record as a broken system might send it (bad amounts, missing fields), shown from
        ``visible_at`` (default: now) whatever its own ``updated_at`` says."""
        with self._lock:
            self.records[resource][str(record.get("id"))] = (visible_at or self._tick(), dict(record))

    def _settle(self, invoice_id: str) -> None:
        invoice = self.invoice(invoice_id)
        if invoice["status"] in ("draft", "void"):
            return
        paid = sum((Decimal(p["amount"]) for _, p in self.records["payments"].values()
                    if p["invoice_id"] == invoice_id), Decimal(0))
        status = "paid" if paid >= Decimal(invoice["total"]) else "partially_paid" if paid else "open"
        if status != invoice["status"]:
            self.change_invoice(invoice_id, status=status)

    # --- what tests look at -------------------------------------------------------------------

    def invoice(self, invoice_id: str) -> dict:
        return self.records["invoices"][invoice_id][1]

    def payments_of(self, invoice_id: str) -> list[dict]:
        return [p for _, p in self.records["payments"].values() if p.get("invoice_id") == invoice_id]

    def page(self, resource: str, since: datetime | None, before: datetime | None,
             after: tuple[datetime, str] | None, limit: int) -> tuple[list[dict], tuple[datetime, str] | None]:
        """One page in (shown at, id) order; the key of its last record if more follow."""
        with self._lock:
            rows = sorted(((shown, key), record) for key, (shown, record) in self.records[resource].items())
        rows = [(k, r) for k, r in rows if (since is None or k[0] >= since) and (before is None or k[0] < before)
                and (after is None or k > after)]
        chosen = rows[:limit]
        return [r for _, r in chosen], chosen[-1][0] if len(rows) > limit else None


# --- the app ----------------------------------------------------------------------------------

def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _authenticate(store: TrainingStore, request: Request) -> JSONResponse | None:
    if request.headers.get("Authorization") != f"Bearer {store.token}" or store.token_revoked:
        return _error(401, "invalid, expired or revoked token", {"WWW-Authenticate": 'Bearer realm="api"'})
    return None


def _encode_token(key: tuple[datetime, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0].isoformat()}|{key[1]}".encode()).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    shown, record_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
    return datetime.fromisoformat(shown), record_id


def create_app(current: TrainingStore | Callable[[], TrainingStore]) -> Starlette:
    """The API over one store, or over whichever store ``current()`` returns at each request."""
    guard = guarded(current, lambda fault, headers: _error(
        fault.status, "rate limit exceeded" if fault.status == 429 else "server error", headers), _authenticate)

    async def listing(request: Request, store: TrainingStore) -> Response:
        resource = request.path_params["resource"]
        if resource not in RESOURCES:
            return _error(404, f"unknown resource {resource!r}")
        params = request.query_params
        unknown = sorted(set(params) - {"updated_since", "updated_before", "limit", "page_token"})
        if unknown:
            return _error(400, f"unknown query parameter(s) {', '.join(unknown)}")
        bounds: dict[str, datetime | None] = {}
        for name in ("updated_since", "updated_before"):
            bounds[name] = _parse_instant(params[name]) if name in params else None
            if name in params and bounds[name] is None:
                return _error(400, f"{name}={params[name]!r} is not an ISO 8601 time with an offset")
        try:
            limit = int(params.get("limit", 100))
        except ValueError:
            return _error(400, f"limit={params['limit']!r} is not a whole number")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}")
        after = None
        if "page_token" in params:
            try:
                after = _decode_token(params["page_token"])
            except (ValueError, UnicodeDecodeError):
                return _error(400, "page_token is not one this server issued")
        data, last = store.page(resource, bounds["updated_since"], bounds["updated_before"], after, limit)
        return JSONResponse({"data": data, "next_page_token": _encode_token(last) if last else None})

    async def one_invoice(request: Request, store: TrainingStore) -> Response:
        invoice_id = request.path_params["invoice_id"]
        if invoice_id not in store.records["invoices"]:
            return _error(404, f"no invoice {invoice_id}")
        if request.method == "PATCH":
            return await _patch(request, store, invoice_id)
        return JSONResponse(store.invoice(invoice_id))

    async def _patch(request: Request, store: TrainingStore, invoice_id: str) -> Response:
        expected = request.headers.get("If-Match")
        if expected is None:
            return _error(428, "If-Match with the invoice version is required")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict) or not body or set(body) - {"po_number", "due_date"}:
            return _error(400, "body must be an object with po_number and/or due_date")
        if "due_date" in body:
            try:
                date.fromisoformat(body["due_date"])
            except (TypeError, ValueError):
                return _error(400, f"due_date {body['due_date']!r} is not an ISO date")
        with store._lock:
            invoice = store.invoice(invoice_id)
            if invoice["status"] == "void":
                return _error(409, f"invoice {invoice['number']} is void")
            if expected.strip('"') != str(invoice["version"]):
                return _error(412, f"invoice {invoice['number']} is at version {invoice['version']}, not {expected}")
            return JSONResponse(store.change_invoice(invoice_id, **body))

    async def payments(request: Request, store: TrainingStore) -> Response:
        invoice_id = request.path_params["invoice_id"]
        if request.method == "GET":
            if invoice_id not in store.records["invoices"]:
                return _error(404, f"no invoice {invoice_id}")
            return JSONResponse({"data": store.payments_of(invoice_id)})
        key = request.headers.get("Idempotency-Key")
        if not key:
            return _error(400, "Idempotency-Key is required")
        raw = await request.body()
        try:
            body = json.loads(raw)
            amount = Decimal(body["amount"])
        except (ValueError, KeyError, TypeError, ArithmeticError):
            return _error(400, "body must be JSON with amount as a decimal string")
        digest = json.dumps(body, sort_keys=True)
        with store._lock:
            if key in store.idempotent:
                seen, status, answer = store.idempotent[key]
                if seen != digest:
                    return _error(422, f"Idempotency-Key {key} was used with another body")
                return JSONResponse(answer, status_code=status, headers={"Idempotent-Replayed": "true"})
            if invoice_id not in store.records["invoices"]:
                return _error(404, f"no invoice {invoice_id}")
            invoice = store.invoice(invoice_id)
            if invoice["status"] == "void":
                status, answer = 409, {"error": f"invoice {invoice['number']} is void"}
            elif body.get("currency") != invoice["currency"] or amount <= 0:
                return _error(400, f"amount must be positive and currency {invoice['currency']}")
            else:
                status = 201
                answer = store.add_payment(invoice_id, str(amount), method=str(body.get("method") or "bank_transfer"),
                                           source="ledgerflow", reference=body.get("reference"),
                                           paid_at=body.get("paid_at"))
            store.idempotent[key] = (digest, status, answer)
            return JSONResponse(answer, status_code=status)

    return Starlette(routes=[
        Route("/api/v1/invoices/{invoice_id}/payments", guard(payments), methods=["GET", "POST"]),
        Route("/api/v1/invoices/{invoice_id}", guard(one_invoice), methods=["GET", "PATCH"]),
        Route("/api/v1/{resource}", guard(listing)),
    ])


class TrainingServer(LocalServer):
    """Serves a store on 127.0.0.1 from a background thread; ``store`` may be replaced while it runs
    (tests share one server and start each from a fresh store)."""

    name = "fake training system"
    root = ""

    def __init__(self, store: TrainingStore, port: int = 0) -> None:
        self.store = store
        super().__init__(create_app(lambda: self.store), port)


# --- webhooks ---------------------------------------------------------------------------------

class WebhookSender:
    """Sends the store's events to ``url`` the way the system does: signed, one POST per event.

    ``clock`` gives the signing time in unix seconds (tests move it to make signatures stale).
    Each method returns the receiver's HTTP status codes, in order."""

    def __init__(self, store: TrainingStore, url: str, secret: str, clock: Callable[[], int] | None = None) -> None:
        import time

        self.store, self.url, self.secret = store, url, secret
        self.clock = clock or (lambda: int(time.time()))

    def post(self, body: bytes, signature: str | None) -> int:
        import httpx

        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return httpx.post(self.url, content=body, headers=headers, timeout=10).status_code

    def signed(self, body: bytes) -> str:
        from sources.webhooks import sign

        return sign(self.secret, body, self.clock())

    @staticmethod
    def body(event: dict) -> bytes:
        return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()

    def send(self, event: dict) -> int:
        body = self.body(event)
        return self.post(body, self.signed(body))

    def burst(self, events: list[dict] | None = None) -> list[int]:
        """Every event given (default: every event the store emitted), one after the other."""
        return [self.send(event) for event in (self.store.events if events is None else events)]

    def replay(self, event: dict) -> int:
        """The same event again, freshly signed: only the event id tells it apart."""
        return self.send(event)

    def tampered(self, event: dict) -> int:
        """Signed for one body, sent with another (an amount changed on the way)."""
        body = self.body(event)
        changed = json.loads(body)
        changed["data"]["object"]["total" if "total" in changed["data"]["object"] else "amount"] = "0.01"
        return self.post(self.body(changed), self.signed(body))

    def unsigned(self, event: dict) -> int:
        return self.post(self.body(event), None)

    def malformed(self) -> int:
        body = b'{"id": "evt_broken", "type": '
        return self.post(body, self.signed(body))
