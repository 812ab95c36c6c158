"""A second, differently shaped PMS API on 127.0.0.1 ("Folio Cloud"), for tests and the example
tenant ``tenants/examples/folio-cloud.toml``: what ``rest_pms`` must cope with that the demo PMS
does not ask of it.

    GET /v2/folio-items     GET /v2/settlements
        X-Api-Key: KEY          every request (or Authorization: Bearer TOKEN); 401 if missing, unknown or revoked
        page=N                  1-based page number
        per_page=M              1..200 (default 50)
        updated_after=ISO       records last modified at or after this instant
        booked_from=ISO         records booked at or after ...
        booked_before=ISO       ... and before this instant
    -> {"items": [...], "meta": {"page": N, "per_page": M, "total_pages": K, "total": T}}

    POST /oauth/token       OAuth 2.0 client credentials, the client in HTTP Basic (RFC 6749 §2.3.1, §4.4)
        grant_type=client_credentials&scope=...  -> {"access_token", "token_type", "expires_in"}

Records nest what the demo PMS keeps flat (``folio.id``, ``guest.company.name``), carry amounts in
integer cents, say ``OPEN``/``CANCELLED`` for posted/void, name articles and tenders in their own
codes, and write times in the hotel's local time with its offset. Unknown query parameters are 400s.

State: every version of every record (``add``), shown as it is at the store's clock. Knobs for
tests: ``throttle`` (the next N requests get 429 + ``Retry-After: 0``), ``api_keys`` (remove one to
revoke it), ``token_uses`` (access tokens expire after that many requests, before their expires_in),
``requests`` (what was asked, for assertions).
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sources.local_server import LocalServer

UTC = ZoneInfo("UTC")
RESOURCES = {"folio-items": "item_id", "settlements": "settlement_id"}
PARAMS = {"page", "per_page", "updated_after", "booked_from", "booked_before"}
MAX_PER_PAGE = 200
API_KEY = "fc_live_9f2b7c41d0e84a6b"
CLIENT_ID, CLIENT_SECRET = "ledgerflow-test", "fc_secret_3e8d1a"

# Their codes for the demo hotel's categories, kinds, methods and statuses (the example tenant maps them back).
ARTICLES = {"ROOM": "ACC-ROOM", "BREAKFAST": "FB-BRKF", "FOOD": "FB-FOOD", "BEVERAGE": "FB-BEV", "SPA": "WELL-SPA",
            "CITY_TAX": "TAX-CITY", "CANCEL_FEE": "ACC-NOSHOW"}
TENDERS = {"CASH": "CASH", "CARD": "VISA", "BANK_TRANSFER": "SEPA", "CITY_LEDGER": "INVOICE",
           "DEPOSIT": "PREPAID"}
TYPES = {"payment": "PAYMENT", "deposit": "PREPAYMENT"}
STATES = {"posted": "OPEN", "void": "CANCELLED"}


def _instant(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo else None


def _cents(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))


def _local(text: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(text).astimezone(zone).isoformat()


def folio_item(charge: dict, zone: ZoneInfo) -> dict:
    """A demo PMS charge as Folio Cloud would show it."""
    return {
        "item_id": charge["id"],
        "folio": {"id": charge.get("folio_id"), "reservation": {"number": charge.get("reservation_id")}},
        "revenue_center": {"name": charge.get("outlet")},
        "article": {"code": ARTICLES.get(charge["category"], charge["category"]), "label": charge.get("description")},
        "qty": charge.get("quantity"),
        "gross_cents": _cents(charge["amount"]),
        "tax_rate": charge.get("vat_rate"),
        "currency_code": charge.get("currency"),
        "state": STATES.get(charge["status"], charge["status"]),
        "booked": _local(charge["posted_at"], zone),
        "last_modified": _local(charge["updated_at"], zone),
    }


def settlement(payment: dict, zone: ZoneInfo) -> dict:
    """A demo PMS payment as Folio Cloud would show it."""
    company = {"id": payment.get("company_id"), "name": payment.get("company_name")}
    return {
        "settlement_id": payment["id"],
        "folio": {"id": payment.get("folio_id")},
        "type": TYPES.get(payment["kind"], payment["kind"]),
        "tender": TENDERS.get(payment["method"], payment["method"]),
        "amount_cents": _cents(payment["amount"]),
        "currency_code": payment.get("currency"),
        "guest": {"company": company if company["id"] else None},
        "ref": payment.get("reference"),
        "state": STATES.get(payment["status"], payment["status"]),
        "received": _local(payment["posted_at"], zone),
        "last_modified": _local(payment["updated_at"], zone),
    }


class FolioStore:
    """Every version of every record; what the API shows depends on the clock."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._versions: dict[str, list[tuple[datetime, dict]]] = {name: [] for name in RESOURCES}
        self._lock = threading.Lock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.api_keys = {API_KEY}
        self.tokens: dict[str, int | None] = {}  # access token -> requests it is still good for (None: any)
        self.token_uses: int | None = None  # tokens issued from now on expire after this many requests
        self.throttle = 0
        self.requests: list[tuple[str, dict[str, str]]] = []

    @classmethod
    def from_demo(cls, charges: Iterable[dict], payments: Iterable[dict], timezone: str) -> FolioStore:
        """The demo hotel's records (every version) as Folio Cloud shows them."""
        from sources.demo_pms.generator import versions

        zone, store = ZoneInfo(timezone), cls()
        for charge in charges:
            for version in versions(charge):
                store.add("folio-items", folio_item(version, zone))
        for payment in payments:
            for version in versions(payment):
                store.add("settlements", settlement(version, zone))
        return store

    def set_clock(self, moment: datetime) -> None:
        self.clock = lambda: moment

    def add(self, resource: str, record: dict, visible_from: datetime | None = None) -> None:
        """One version; a malformed record needs ``visible_from`` when its ``last_modified`` is no time."""
        shown = visible_from or _instant(record.get("last_modified"))
        if shown is None:
            raise ValueError(f"record {record!r}: give visible_from, last_modified is not a time with an offset")
        with self._lock:
            self._versions[resource].append((shown.astimezone(UTC), dict(record)))

    def current(self, resource: str) -> list[tuple[datetime, dict]]:
        """The current version of each record at the clock, ordered by (modified, id)."""
        key, clock = RESOURCES[resource], self.clock()
        with self._lock:
            latest: dict[str, tuple[datetime, dict]] = {}
            for shown, record in sorted(self._versions[resource], key=lambda v: v[0]):
                if shown <= clock:
                    latest[str(record.get(key))] = (shown, record)
        return sorted(latest.values(), key=lambda v: (v[0], str(v[1].get(key))))


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def _use_token(store: FolioStore, token: str) -> bool:
    with store._lock:
        left = store.tokens.get(token, 0)
        if left is None:
            return True
        if left <= 0:
            store.tokens.pop(token, None)
            return False
        store.tokens[token] = left - 1
        return True


def create_app(store: FolioStore) -> Starlette:
    async def listing(request: Request) -> JSONResponse:
        resource, params = request.path_params["resource"], request.query_params
        store.requests.append((resource, dict(params)))
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if request.headers.get("x-api-key") not in store.api_keys and not _use_token(store, bearer):
            return _error(401, "missing, unknown or expired API key or access token")
        if store.throttle > 0:
            store.throttle -= 1
            return _error(429, "too many requests", {"Retry-After": "0"})
        if resource not in RESOURCES:
            return _error(404, f"unknown resource {resource!r}")
        unknown = sorted(set(params) - PARAMS)
        if unknown:
            return _error(400, f"unknown parameter(s): {', '.join(unknown)}")
        try:
            page, per_page = int(params.get("page", 1)), int(params.get("per_page", 50))
        except ValueError:
            return _error(400, "page and per_page are whole numbers")
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, f"page >= 1 and 1 <= per_page <= {MAX_PER_PAGE}")
        bounds = {}
        for name in ("updated_after", "booked_from", "booked_before"):
            bounds[name] = _instant(params.get(name))
            if params.get(name) and bounds[name] is None:
                return _error(400, f"{name}={params[name]!r} is not an ISO 8601 time with an offset")
        booked = "booked" if resource == "folio-items" else "received"
        rows = []
        for shown, record in store.current(resource):
            when = _instant(record.get(booked))
            if bounds["updated_after"] and shown < bounds["updated_after"]:
                continue
            if bounds["booked_from"] and (when is None or when < bounds["booked_from"]):
                continue
            if bounds["booked_before"] and (when is None or when >= bounds["booked_before"]):
                continue
            rows.append(record)
        pages = max(1, -(-len(rows) // per_page))
        return JSONResponse({"items": rows[(page - 1) * per_page:page * per_page],
                             "meta": {"page": page, "per_page": per_page, "total_pages": pages, "total": len(rows)}})

    async def token(request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = dict(parse_qsl((await request.body()).decode()))
        store.requests.append(("token", form))
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        issued = secrets.token_urlsafe(16)
        store.tokens[issued] = store.token_uses
        return JSONResponse({"access_token": issued, "token_type": "Bearer", "expires_in": 3600})

    return Starlette(routes=[Route("/v2/{resource}", listing), Route("/oauth/token", token, methods=["POST"])])


class FolioCloudServer(LocalServer):
    """Serves a store on 127.0.0.1 from a background thread; use as a context manager."""

    name = "Folio Cloud fake PMS"
    root = "/v2"

    def __init__(self, store: FolioStore, port: int = 0) -> None:
        self.store = store
        super().__init__(create_app(store), port)
