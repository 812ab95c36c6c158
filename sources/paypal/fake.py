"""A stateful fake of PayPal's OAuth 2 token endpoint and Transaction Search API on 127.0.0.1.

Every search is first checked against PayPal's own description
(``../shared/specs/paypal/reporting_transactions_v1.json``): what does not match is kept in
``spec_violations`` and answered 400, so a client test can end with
``assert store.spec_violations == []``. Then the fake enforces what the description only says in
words: ``start_date`` before ``end_date``, at most 31 days apart (400 ``INVALID_REQUEST`` with a
``details`` entry, PayPal's error shape), and a start no older than three years.

Behaviours chosen where PayPal's documentation is silent or the fake simplifies:

* Tokens: ``POST /v1/oauth2/token`` with HTTP Basic client credentials and
  ``grant_type=client_credentials`` answers a bearer token (``expires_in`` 32400, as PayPal's
  sandbox does); wrong credentials are 401 ``invalid_client``. ``token_calls`` makes every token
  expire after that many searches (401 ``invalid_token``), to rehearse a token running out
  mid-run.
* The search returns transactions whose ``transaction_initiation_date`` lies in
  [start_date, end_date] (both ends included, as far as we can tell PayPal's are), ordered by that
  date then id, ``page_size`` per page; ``balance_affecting_records_only`` is accepted and ignored
  (every stored transaction affects the balance); other filters are refused (400) rather than
  half-implemented.
* ``faults``: the next matching requests are answered with a status (429 with ``Retry-After: 0``
  by default), before authentication, as a gateway would.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sources import local_server
from sources.local_server import LocalServer, guarded

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "paypal" / "reporting_transactions_v1.json"
# The description's server is https://api-m.paypal.com/v1/reporting and its paths repeat /v1/reporting; PayPal
# itself answers on /v1/reporting/transactions. The check therefore prefixes the server's path once more.
SPEC_HOST, SPEC_SERVER_PATH = "https://api-m.paypal.com", "/v1/reporting"
CLIENT_ID = "AeFakeClientId0123456789"
CLIENT_SECRET = "EFakeClientSecret-9876543210"
ACCOUNT = "4MW2K7Q9BXYZA"
SUPPORTED = {"start_date", "end_date", "fields", "page_size", "page", "balance_affecting_records_only"}


@dataclass
class Fault(local_server.Fault):
    """A shared fault whose defaults here are a 429 with ``Retry-After: 0``."""

    status: int = 429
    retry_after: str | None = "0"


def transaction_id(seed: str) -> str:
    """A 17-character PayPal-looking transaction id, stable for a seed."""
    return hashlib.sha256(seed.encode()).hexdigest()[:17].upper()


def transaction(seed: str, when: datetime, event_code: str, value: str, currency: str = "EUR", *,
                status: str = "S", fee: str | None = None, offset: str = "-07:00") -> dict:
    """A ``transaction_detail`` as PayPal answers with ``fields=all`` (times in the account's zone)."""
    sign, hours, minutes = offset[0], int(offset[1:3]), int(offset[4:6])
    shift = timedelta(hours=hours, minutes=minutes) * (1 if sign == "+" else -1)
    local = (when.astimezone(UTC) + shift).strftime("%Y-%m-%dT%H:%M:%S") + offset
    payer = "PAYER" + transaction_id("payer-" + seed)[:8]
    info = {"paypal_account_id": payer, "transaction_id": transaction_id(seed),
            "transaction_event_code": event_code, "transaction_initiation_date": local,
            "transaction_updated_date": local, "transaction_amount": {"currency_code": currency, "value": value},
            "transaction_status": status, "protection_eligibility": "02"}
    if fee is not None:
        info["fee_amount"] = {"currency_code": currency, "value": fee}
    return {"transaction_info": info, "payer_info": {"account_id": payer,
                                                     "email_address": f"{seed}@example.com"},
            "cart_info": {}, "store_info": {}, "auction_info": {}, "incentive_info": {}}


class PaypalStore:
    """One merchant account as PayPal's reporting sees it."""

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.transactions: list[dict] = []
        self.faults: list[Fault] = []
        self.token_calls: int | None = None  # searches a token is good for (None: until expires_in)
        self.tokens: dict[str, int] = {}  # token -> searches made with it
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.spec_violations: list[str] = []
        self.now = datetime.now(UTC)
        self._lock = threading.Lock()

    def add(self, detail: dict) -> dict:
        with self._lock:
            self.transactions.append(detail)
        return detail

    @classmethod
    def demo(cls, now: datetime, days: int = 70) -> PaypalStore:
        """``days`` of trading up to ``now``: two sales a day (with fees), a refund every ten days, a
        weekly withdrawal to the bank (one reversed, one denied), a JPY sale, one sale an hour old."""
        store = cls()
        store.now = now
        start = (now - timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)
        for day in range(days):
            moment = start + timedelta(days=day)
            store.add(transaction(f"sale-{day}-a", moment, "T0006", f"{40 + day}.50", fee=f"-{1 + day % 3}.69"))
            store.add(transaction(f"sale-{day}-b", moment + timedelta(hours=5), "T0006", f"{12 + day % 9}.00",
                                  fee="-0.71", offset="+00:00"))
            if day % 10 == 3:
                store.add(transaction(f"refund-{day}", moment + timedelta(hours=2), "T1107", "-19.99"))
            if day % 7 == 6:
                status = {13: "V", 27: "D"}.get(day, "S")
                store.add(transaction(f"withdrawal-{day}", moment + timedelta(hours=8), "T0400",
                                      f"-{300 + day}.00", status=status))
        store.add(transaction("sale-jpy", start + timedelta(days=20, hours=1), "T0006", "1500", "JPY"))
        store.add(transaction("sale-too-recent", now - timedelta(hours=1), "T0006", "99.00"))
        return store

    # what tests look at
    def searches(self) -> list[dict[str, str]]:
        return [dict(parse_qsl(path.partition("?")[2])) for method, path in self.requests
                if method == "GET" and path.startswith("/v1/reporting/transactions")]

    def token_requests(self) -> int:
        return sum(1 for method, path in self.requests if path.startswith("/v1/oauth2/token"))

    def withdrawals(self) -> list[dict]:
        return [t for t in self.transactions if t["transaction_info"]["transaction_event_code"].startswith("T04")]

# --- the app ---------------------------------------------------------------------------------

_FAULTS = {429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
           500: ("INTERNAL_SERVER_ERROR", "An internal server error occurred."),
           400: ("INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.")}


def _fault_response(fault: Fault, headers: dict | None) -> JSONResponse:
    name, message = _FAULTS.get(fault.status, _FAULTS[500] if fault.status >= 500 else _FAULTS[400])
    return JSONResponse({"name": name, "message": message, "debug_id": secrets.token_hex(6)},
                        status_code=fault.status, headers=headers)


def _invalid_request(field_name: str, value: str, issue: str, description: str) -> JSONResponse:
    return JSONResponse({
        "name": "INVALID_REQUEST",
        "message": "Request is not well-formed, syntactically incorrect, or violates schema.",
        "debug_id": secrets.token_hex(6),
        "details": [{"field": field_name, "value": value, "location": "query", "issue": issue,
                     "description": description}],
        "links": [{"href": "https://developer.paypal.com/docs/api/transaction-search/v1/#error-" + issue,
                   "rel": "information_link"}],
    }, status_code=400)


@functools.cache
def _openapi():
    """PayPal's description, built once per process (read as JSON: the YAML loader takes seconds)."""
    from openapi_core import OpenAPI
    from openapi_core.configurations import Config

    return OpenAPI.from_dict(json.loads(SPEC.read_text(encoding="utf-8")), config=Config(spec_validator_cls=None))


def _spec_errors(request: Request) -> list[str]:
    from destinations.apis.fakes.openapi_check import SpecRequest, request_errors

    spec_request = SpecRequest(host_url=SPEC_HOST, path=SPEC_SERVER_PATH + request.url.path, method=request.method,
                               query=list(request.query_params.multi_items()), headers=list(request.headers.items()),
                               body=b"", content_type="application/json")
    return request_errors(_openapi(), spec_request)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def create_app(current) -> Starlette:
    """The API over one store, or over whichever store ``current()`` returns at each request."""
    guard = guarded(current, _fault_response)

    async def token(request: Request, store: PaypalStore) -> Response:
        expected = "Basic " + base64.b64encode(f"{store.client_id}:{store.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return JSONResponse({"error": "invalid_client", "error_description": "Client Authentication failed"},
                                status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        if request.headers.get("content-type") != "application/x-www-form-urlencoded" or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": "Grant Type is NULL or not supported"}, status_code=400)
        access = "A21AA" + secrets.token_urlsafe(24)
        with store._lock:
            store.tokens[access] = 0
        return JSONResponse({"scope": "https://uri.paypal.com/services/reporting/search/read",
                             "access_token": access, "token_type": "Bearer", "app_id": "APP-80W284485P519543T",
                             "expires_in": 32400, "nonce": store.now.strftime("%Y-%m-%dT%H:%M:%SZ") + secrets.token_hex(4)})

    def _authorised(request: Request, store: PaypalStore) -> JSONResponse | None:
        header = request.headers.get("Authorization", "")
        access = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with store._lock:
            if access is None or access not in store.tokens:
                return JSONResponse({"error": "invalid_token", "error_description": "Token signature verification "
                                     "failed"}, status_code=401)
            if store.token_calls is not None and store.tokens[access] >= store.token_calls:
                return JSONResponse({"error": "invalid_token", "error_description": "Access Token not found in cache"},
                                    status_code=401)
            store.tokens[access] += 1
        return None

    async def search(request: Request, store: PaypalStore) -> Response:
        if refused := _authorised(request, store):
            return refused
        problems = _spec_errors(request)
        if problems:
            store.spec_violations += [f"GET {request.url.path}?{request.url.query}: {p}" for p in problems]
            return _invalid_request("query", request.url.query, "INVALID_PARAMETER_SYNTAX", "; ".join(problems))
        query = request.query_params
        unsupported = sorted(set(query) - SUPPORTED)
        if unsupported:
            return _invalid_request(unsupported[0], query[unsupported[0]], "UNSUPPORTED_IN_FAKE",
                                    f"the fake does not filter by {', '.join(unsupported)}")
        try:
            start, end = _instant(query["start_date"]), _instant(query["end_date"])
        except ValueError as exc:
            return _invalid_request("start_date", query["start_date"], "INVALID_PARAMETER_SYNTAX", str(exc))
        if end <= start:
            return _invalid_request("end_date", query["end_date"], "INVALID_DATE_RANGE",
                                    "end_date must be after start_date.")
        if end - start > timedelta(days=31):
            return _invalid_request("end_date", query["end_date"], "INVALID_DATE_RANGE",
                                    "The maximum supported range is 31 days.")
        if start < store.now - timedelta(days=3 * 365):
            return _invalid_request("start_date", query["start_date"], "INVALID_DATE_RANGE",
                                    "Data for the given start date is not available.")
        page_size, page = int(query.get("page_size", 100)), int(query.get("page", 1))
        found = sorted((t for t in store.transactions
                        if start <= _instant(t["transaction_info"]["transaction_initiation_date"]) <= end),
                       key=lambda t: (_instant(t["transaction_info"]["transaction_initiation_date"]),
                                      t["transaction_info"]["transaction_id"]))
        pages = -(-len(found) // page_size)
        stamp = "%Y-%m-%dT%H:%M:%S%z"
        return JSONResponse({
            "transaction_details": found[(page - 1) * page_size:page * page_size],
            "account_number": ACCOUNT,
            "start_date": start.strftime(stamp), "end_date": end.strftime(stamp),
            "last_refreshed_datetime": (store.now - timedelta(minutes=50)).strftime(stamp),
            "page": page, "total_items": len(found), "total_pages": pages,
            "links": [{"href": str(request.url), "rel": "self", "method": "GET"}],
        })

    return Starlette(routes=[
        Route("/v1/oauth2/token", guard(token), methods=["POST"]),
        Route("/v1/reporting/transactions", guard(search), methods=["GET"]),
    ])


class FakePaypalServer(LocalServer):
    name = "fake PayPal"

    def __init__(self, store: PaypalStore, port: int = 0) -> None:
        self.store = store
        super().__init__(create_app(lambda: self.store), port)


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FakePaypalServer", "Fault", "PaypalStore", "transaction",
           "transaction_id"]
