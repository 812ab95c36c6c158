"""A stateful fake of Xero (Accounting API, identity ``/connections``, OAuth 2 token endpoint)
on 127.0.0.1, for the client tests and the benchmarks.

What it answers: ``/api.xro/2.0/{ManualJournals,Invoices,CreditNotes,Payments,Contacts}``
(create with PUT/POST, several elements per request; update with POST and the element's id;
list with ``where``, paging and the ``IDs``/``InvoiceNumbers``/... lists; GET by id), shaped
as the official description's schemas; ``GET /connections``; ``POST /connect/token``. Every
request is first checked against Xero's own OpenAPI description (``../shared/specs/xero``):
what does not match is kept in ``spec_violations`` and answered 400, so a client test can
end with ``assert fake.spec_violations == []``. The bookkeeping rules live in ``xero_books``.

Behaviours chosen where Xero's documentation is silent or the fake simplifies:

* Validation (400, ``ValidationException``, ErrorNumber 10): with ``summarizeErrors`` absent
  or true, one rejected element rejects the request and nothing is saved; ``Elements`` lists
  the rejected elements with their ``ValidationErrors``. With ``summarizeErrors=false`` the
  reply is 200, valid elements are saved and every element carries ``StatusAttributeString``
  (``OK``/``ERROR``), rejected ones also ``ValidationErrors`` and ``HasErrors`` (invoices,
  credit notes) or ``HasValidationErrors`` (payments, contacts). The description declares
  ``default: false`` for summarizeErrors; Xero itself summarises unless told not to.
* ``Idempotency-Key`` (PUT/POST, at most 128 characters, else 400): per organisation, kept
  for the fake's lifetime. The same key with the same method, path, query and JSON body
  replays the first reply (status and body) without doing anything; with anything different
  it is a 400 ``ValidationException`` naming the key. Only replies of the resource itself are
  kept (200s, validation 400s, 404s): a 401/403, a 429 or an injected 500/503 did nothing,
  so the retry with the same key is carried out.
* Rate limits per organisation in sliding windows of the injectable clock ``now``: calls a
  minute, calls a day (rolling 24 h), calls in progress at once; and calls a minute for the
  whole app. Over a limit: 429, ``Retry-After`` (whole seconds until the window has room; 1
  for the concurrent limit), ``X-Rate-Limit-Problem: minute|day|concurrent|appminute``. A
  refused call does not use up quota. Replies to authorised API calls carry
  ``X-DayLimit-Remaining``, ``X-MinLimit-Remaining`` and ``X-AppMinLimit-Remaining``.
* Tokens: access tokens live 30 minutes of ``now`` (``expires_in`` 1800); refresh tokens
  rotate and a used one is ``invalid_grant`` at once (Xero documents no grace period we rely
  on); refresh tokens do not expire in the fake. 401 bodies are the problem-details shape
  Xero's gateway returns (``TokenExpired: ...`` / ``AuthenticationUnsuccessful``); a tenant
  the token was not granted is 403 ``AuthorizationUnsuccessful``.
* ``where`` compares strings exactly (case-sensitive), ids case-insensitively; ``order`` is
  ignored (creation order); without ``page`` everything is returned and there is no
  ``pagination`` block.
* ``/connect/token`` has no path in the description, so it is checked by hand (form fields,
  HTTP Basic client credentials); ``/connections`` is checked against xero-identity.yaml.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from destinations.apis.fakes.openapi_check import SpecRequest, load_openapi, request_errors
from destinations.apis.fakes.xero_books import KINDS, MAX_PAGE_SIZE, PAGE_SIZE, Books, WhereError, now_ms_date
from sources.local_server import LocalServer

API_ROOT = "/api.xro/2.0"
XERO_HOST = "https://api.xero.com"  # the description's server is https://api.xero.com/api.xro/2.0
SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "xero"
CLIENT_ID = "6F1C1C535B9A4A439E5E2F0D6B0C7A11"
CLIENT_SECRET = "fake-xero-client-secret"
REDIRECT_URI = "http://localhost:8765/xero/callback"
SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings"
ACCESS_TOKEN_SECONDS = 1800
MAX_IDEMPOTENCY_KEY = 128
DAY = 86_400.0
FAULT_KINDS = ("429", "500", "503", "timeout_after_commit", "validation")
_NAMESPACE = uuid.UUID("3b0c1f52-7d7e-4f4e-9b8a-5d0f3c2e1a90")
# GET list parameters that take comma-separated values, and the field each one matches
_LIST_PARAMETERS = {
    "Invoices": {"IDs": "InvoiceID", "InvoiceNumbers": "InvoiceNumber", "ContactIDs": "Contact.ContactID",
                 "Statuses": "Status"},
    "Contacts": {"IDs": "ContactID"},
}


@dataclass
class Fault:
    """Answer the next ``remaining`` matching requests wrongly (see ``FakeXero.fail_next``)."""

    kind: str
    remaining: int
    path_contains: str | None = None
    method: str | None = None
    retry_after: int = 1
    delay: float = 2.0  # not money: seconds
    element_contains: str | None = None
    message: str = "Rejected by a fault injected in the fake Xero"


@dataclass(frozen=True)
class SpecViolation:
    method: str
    path: str
    message: str


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int
    tenant_id: str | None


@dataclass
class _Grant:
    """What a user consented to: the organisations a token set may reach."""

    tenant_ids: tuple[str, ...]
    scope: str
    auth_event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class _AccessToken:
    grant: _Grant
    expires_at: float  # not money: seconds; on the fake's clock


@dataclass
class _Usage:
    minute: deque = field(default_factory=deque)  # when admitted calls were made, last 60 s
    day: deque = field(default_factory=deque)  # ... last 24 h
    seen: deque = field(default_factory=deque)  # every call that reached the limiter, last 60 s
    in_flight: int = 0


def _trim(window: deque, since: float) -> None:  # not money: seconds
    while window and window[0] <= since:
        window.popleft()


class RateLimits:
    """Xero's per-organisation limits and the app-wide minute limit, on an injectable clock."""

    def __init__(self, *, per_minute: int, per_day: int, concurrent: int, app_per_minute: int,
                 now: Callable[[], float]) -> None:
        self.per_minute, self.per_day, self.concurrent, self.app_per_minute = (per_minute, per_day, concurrent,
                                                                               app_per_minute)
        self.now = now
        self.usage: dict[str, _Usage] = {}
        self.app_minute: deque = deque()
        self.max_calls_per_minute = 0  # most calls one organisation sent within 60 s (refused ones too)
        self.max_in_flight = 0

    def admit(self, tenant_id: str) -> tuple[str, int] | None:
        """None when the call may go ahead (and is counted), else (problem, Retry-After seconds)."""
        moment = self.now()
        usage = self.usage.setdefault(tenant_id, _Usage())
        for window, span in ((usage.minute, 60.0), (usage.day, DAY), (usage.seen, 60.0), (self.app_minute, 60.0)):
            _trim(window, moment - span)
        usage.seen.append(moment)
        self.max_calls_per_minute = max(self.max_calls_per_minute, len(usage.seen))
        if usage.in_flight >= self.concurrent:
            return "concurrent", 1
        for problem, window, limit, span in (("day", usage.day, self.per_day, DAY),
                                             ("minute", usage.minute, self.per_minute, 60.0),
                                             ("appminute", self.app_minute, self.app_per_minute, 60.0)):
            if len(window) >= limit:
                return problem, max(1, math.ceil(window[0] + span - moment))
        for window in (usage.minute, usage.day, self.app_minute):
            window.append(moment)
        usage.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, usage.in_flight)
        return None

    def release(self, tenant_id: str) -> None:
        self.usage[tenant_id].in_flight -= 1

    def headers(self, tenant_id: str) -> dict[str, str]:
        usage = self.usage.get(tenant_id, _Usage())
        return {"X-DayLimit-Remaining": str(max(0, self.per_day - len(usage.day))),
                "X-MinLimit-Remaining": str(max(0, self.per_minute - len(usage.minute))),
                "X-AppMinLimit-Remaining": str(max(0, self.app_per_minute - len(self.app_minute)))}


# --- reply bodies --------------------------------------------------------------------------------

def _problem(status: int, title: str, detail: str, headers: dict | None = None) -> JSONResponse:
    """The problem-details body Xero's gateway answers for 401/403/429/5xx."""
    return JSONResponse({"Type": None, "Title": title, "Status": status, "Detail": detail,
                         "Instance": str(uuid.uuid4()), "Extensions": {}}, status_code=status, headers=headers)


def _xero_error(number: int, error_type: str, message: str, elements: list | None = None) -> JSONResponse:
    body = {"ErrorNumber": number, "Type": error_type, "Message": message}
    if elements is not None:
        body["Elements"] = elements
    return JSONResponse(body, status_code=400)


def _validation_error(elements: list[dict]) -> JSONResponse:
    return _xero_error(10, "ValidationException", "A validation exception occurred", elements)


def _rejected(element: dict, errors: list[str], flag: str | None, *, summarised: bool) -> dict:
    rejected = {**element, "ValidationErrors": [{"Message": message} for message in errors]}
    if flag:
        rejected[flag] = True
    if not summarised:
        rejected["StatusAttributeString"] = "ERROR"
    return rejected


def _fingerprint(request: Request, body: bytes) -> str:
    """Method, path, query and body; JSON bodies compared by content, not by key order."""
    try:
        content = json.dumps(json.loads(body), sort_keys=True)
    except ValueError:
        content = body.decode("utf-8", "replace")
    query = sorted(request.query_params.multi_items())
    return hashlib.sha256(json.dumps([request.method, request.url.path, query, content]).encode()).hexdigest()


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


class FakeXero(LocalServer):
    """Xero on 127.0.0.1 (``url`` is the host; ``api_url``, ``token_url``, ``connections_url``).

    State tests read: ``organisations`` (tenant id -> ``Books``), ``manual_journals``,
    ``invoices``, ``credit_notes``, ``payments``, ``contacts`` (the first organisation's),
    ``spec_violations``, ``limit_violations`` (calls refused 429 by a real limit),
    ``max_calls_per_minute``, ``max_in_flight``, ``requests``. Knobs: ``fail_next``,
    ``expire_access_tokens``, ``issue_code``/``issue_tokens``, ``limits`` (a ``RateLimits``
    whose numbers may be changed), ``latency`` (seconds every API reply is held, in real
    time, so calls overlap as they do against the real Xero), ``reset``.
    """

    name = "fake Xero"

    # ``specs=None`` turns the check against the description off (for a benchmark that wants
    # the last millisecond); ``now`` drives the rate limits and token lifetimes, not the dates
    # written into objects (those are today's, as Xero writes them).
    def __init__(self, *, tenants: Iterable[str] = ("Demo Company (BE)",), client_id: str = CLIENT_ID,
                 client_secret: str = CLIENT_SECRET, redirect_uri: str = REDIRECT_URI, per_minute: int = 60,
                 per_day: int = 5_000, concurrent: int = 5, app_per_minute: int = 10_000,
                 latency: float = 0.0,  # not money: seconds
                 now: Callable[[], float] = time.monotonic, specs: Path | None = SPECS,
                 provider_name: str = "ledgerflow", port: int = 0) -> None:
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.tenant_names = list(tenants)
        self.now, self.latency, self.provider_name = now, latency, provider_name
        self._limit_settings = {"per_minute": per_minute, "per_day": per_day, "concurrent": concurrent,
                                "app_per_minute": app_per_minute}
        self.specs = specs
        if specs is not None:  # built now: the first request must not wait 1.5 s for it
            load_openapi(specs / "xero_accounting.yaml")
            load_openapi(specs / "xero-identity.yaml")
        self._lock = threading.Lock()
        self.reset()
        super().__init__(self._app(), port)

    # --- set-up and what tests read ------------------------------------------------------------

    def reset(self) -> None:
        """Empty books, no tokens, faults, counters or remembered idempotency keys."""
        with self._lock:
            self.organisations: dict[str, Books] = {}
            for name in self.tenant_names:
                self.add_tenant(name)
            self.limits = RateLimits(now=lambda: self.now(), **self._limit_settings)
            self.spec_violations: list[SpecViolation] = []
            self.requests: list[RecordedRequest] = []
            self.limit_violations = 0
            self._faults: list[Fault] = []
            self._codes: dict[str, tuple[_Grant, str]] = {}
            self._access_tokens: dict[str, _AccessToken] = {}
            self._refresh_tokens: dict[str, _Grant] = {}
            self._idempotency: dict[tuple[str, str], tuple[str, int, bytes]] = {}

    def add_tenant(self, name: str) -> Books:
        books = Books(tenant_id=str(uuid.uuid5(_NAMESPACE, name)), name=name)
        self.organisations[books.tenant_id] = books
        return books

    @property
    def tenant_id(self) -> str:
        return next(iter(self.organisations))

    @property
    def api_url(self) -> str:
        return self.url + API_ROOT

    @property
    def token_url(self) -> str:
        return self.url + "/connect/token"

    @property
    def connections_url(self) -> str:
        return self.url + "/connections"

    def _first(self, kind: str) -> list[dict]:
        return list(self.organisations[self.tenant_id].collections[kind].values())

    manual_journals = property(lambda self: self._first("ManualJournals"))
    invoices = property(lambda self: self._first("Invoices"))
    credit_notes = property(lambda self: self._first("CreditNotes"))
    payments = property(lambda self: self._first("Payments"))
    contacts = property(lambda self: self._first("Contacts"))

    @property
    def max_calls_per_minute(self) -> int:
        return self.limits.max_calls_per_minute

    @property
    def max_in_flight(self) -> int:
        return self.limits.max_in_flight

    # --- tokens --------------------------------------------------------------------------------

    def issue_code(self, tenant_ids: Iterable[str] | None = None, *, redirect_uri: str | None = None,
                   scope: str = SCOPE) -> str:
        """An authorisation code, as Xero's consent screen would hand the app (default: all tenants)."""
        code = secrets.token_urlsafe(24)
        grant = _Grant(tuple(tenant_ids or self.organisations), scope)
        with self._lock:
            self._codes[code] = (grant, redirect_uri or self.redirect_uri)
        return code

    def issue_tokens(self, tenant_ids: Iterable[str] | None = None, scope: str = SCOPE) -> dict:
        """A token response as ``/connect/token`` gives it, without the round trip."""
        return self._issue(_Grant(tuple(tenant_ids or self.organisations), scope))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 TokenExpired from now on."""
        with self._lock:
            for token in self._access_tokens.values():
                token.expires_at = min(token.expires_at, self.now())

    def _issue(self, grant: _Grant) -> dict:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access] = _AccessToken(grant, self.now() + ACCESS_TOKEN_SECONDS)
            self._refresh_tokens[refresh] = grant
        return {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer",
                "refresh_token": refresh, "scope": grant.scope}

    # --- faults --------------------------------------------------------------------------------

    def fail_next(self, kind: str, count: int = 1, path_contains: str | None = None, *, method: str | None = None,
                  retry_after: int = 1, delay: float = 2.0, element_contains: str | None = None,  # not money: seconds
                  message: str | None = None) -> None:
        """Answer the next ``count`` requests whose path contains ``path_contains`` wrongly:

        ``"429"`` (with ``Retry-After: retry_after``), ``"500"``, ``"503"``: instead of doing
        anything; ``"timeout_after_commit"``: do the work, then hold the reply ``delay``
        seconds so the client gives up first; ``"validation"``: reject with a validation error
        (``message``) each element of a PUT/POST whose JSON contains ``element_contains``,
        the others being saved or not as ``summarizeErrors`` says. Injected 429s are not
        counted in ``limit_violations``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if kind == "validation" and not element_contains:
            raise ValueError("a validation fault needs element_contains (text of the elements to reject)")
        fault = Fault(kind, count, path_contains, method.upper() if method else None, retry_after, delay,
                      element_contains)
        if message:
            fault.message = message
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.method and fault.method != method:
                    continue
                if fault.kind == "validation" and (method == "GET" or fault.element_contains.encode() not in body):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- the app -------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/connect/token", self._guarded(self._token, None), methods=["POST"]),
            Route("/connections", self._guarded(self._connections, "xero-identity.yaml"), methods=["GET"]),
            Route("/Connections", self._guarded(self._connections, "xero-identity.yaml"), methods=["GET"]),
            Route(API_ROOT + "/{collection}", self._guarded(self._api, "xero_accounting.yaml"),
                  methods=["GET", "PUT", "POST"]),
            Route(API_ROOT + "/{collection}/{object_id}", self._guarded(self._api, "xero_accounting.yaml"),
                  methods=["GET", "POST"]),
            Route(API_ROOT + "/{rest:path}", self._guarded(self._not_faked, "xero_accounting.yaml"),
                  methods=["GET", "PUT", "POST", "DELETE"]),
        ])

    def _guarded(self, handler, description: str | None):
        """Every request: checked against the description, logged, maybe answered by a fault."""
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            request.state.tenant_id = None
            response = self._spec_refusal(request, body, description)
            fault = None
            if response is None:
                fault = self._take_fault(request.method, request.url.path, body)
                response = self._fault_reply(fault) or await handler(request, body, fault)
            self.requests.append(RecordedRequest(request.method, request.url.path, request.url.query,
                                                 response.status_code, request.state.tenant_id))
            return response
        return endpoint

    def _spec_refusal(self, request: Request, body: bytes, description: str | None) -> Response | None:
        if self.specs is None or description is None:
            return None
        path = request.url.path
        if description == "xero-identity.yaml":
            path = "/Connections"
        spec_request = SpecRequest(XERO_HOST, path, request.method, request.query_params.multi_items(),
                                   list(request.headers.items()), body,
                                   request.headers.get("content-type", "application/json"))
        messages = request_errors(load_openapi(self.specs / description), spec_request)
        if not messages:
            return None
        self.spec_violations.extend(SpecViolation(request.method, request.url.path, m) for m in messages)
        return _xero_error(400, "SpecViolation", "; ".join(messages))

    def _fault_reply(self, fault: Fault | None) -> Response | None:
        if fault is None or fault.kind not in ("429", "500", "503"):
            return None
        if fault.kind == "429":
            return _problem(429, "Too Many Requests", "Rate limit exceeded (injected)",
                            {"Retry-After": str(fault.retry_after), "X-Rate-Limit-Problem": "minute"})
        if fault.kind == "500":
            return _problem(500, "An error occurred", "An error occurred in Xero (injected).")
        return _problem(503, "Service Unavailable", "The Xero API is temporarily unavailable (injected).")

    async def _hold(self, fault: Fault | None) -> None:
        delay = self.latency + (fault.delay if fault and fault.kind == "timeout_after_commit" else 0.0)
        if delay:
            await asyncio.sleep(delay)

    async def _not_faked(self, request: Request, body: bytes, fault: Fault | None) -> Response:
        return PlainTextResponse(f"{request.url.path} is not served by the fake Xero", status_code=404)

    # --- identity ------------------------------------------------------------------------------

    def _bearer(self, request: Request) -> tuple[_AccessToken | None, Response | None]:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self._access_tokens.get(value) if scheme == "Bearer" else None
        if token is None:
            return None, _problem(401, "Unauthorized", "AuthenticationUnsuccessful",
                                  {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if token.expires_at <= self.now():
            expired = datetime.now(UTC) - timedelta(seconds=self.now() - token.expires_at)
            return None, _problem(401, "Unauthorized", f"TokenExpired: token expired at {expired:%m/%d/%Y %H:%M:%S}",
                                  {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return token, None

    async def _connections(self, request: Request, body: bytes, fault: Fault | None) -> Response:
        token, refusal = self._bearer(request)
        if refusal:
            return refusal
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
        return JSONResponse([{"id": str(uuid.uuid5(_NAMESPACE, token.grant.auth_event_id + tenant_id)),
                              "authEventId": token.grant.auth_event_id, "tenantId": tenant_id,
                              "tenantType": "ORGANISATION", "tenantName": self.organisations[tenant_id].name,
                              "createdDateUtc": stamp, "updatedDateUtc": stamp}
                             for tenant_id in token.grant.tenant_ids if tenant_id in self.organisations])

    async def _token(self, request: Request, body: bytes, fault: Fault | None) -> Response:
        """OAuth 2 token endpoint: client by HTTP Basic; authorization_code or refresh_token."""
        if _basic_credentials(request) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="identity"'})
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                grant, redirect_uri = self._codes.pop(form.get("code", ""), (None, None))
                if grant is not None and redirect_uri != form.get("redirect_uri"):
                    grant = None  # RFC 6749 §4.1.3: the redirect_uri must be the one the code was issued for
            elif grant_type == "refresh_token":
                grant = self._refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation: single use
            else:
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        tokens = self._issue(grant)
        await self._hold(fault)
        return JSONResponse(tokens)

    # --- the accounting API --------------------------------------------------------------------

    async def _api(self, request: Request, body: bytes, fault: Fault | None) -> Response:
        token, refusal = self._bearer(request)
        if refusal:
            return refusal
        tenant_id = request.headers.get("xero-tenant-id", "").lower()
        if tenant_id not in token.grant.tenant_ids or tenant_id not in self.organisations:
            return _problem(403, "Forbidden", "AuthorizationUnsuccessful")
        request.state.tenant_id = tenant_id
        limits = self.limits  # this one, even if a test resets the fake while the reply is held
        limited = limits.admit(tenant_id)
        if limited:
            self.limit_violations += 1
            problem, retry_after = limited
            return _problem(429, "Too Many Requests", f"Rate limit exceeded: {problem}",
                            {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem,
                             **limits.headers(tenant_id)})
        try:
            response = self._idempotent(request, body, tenant_id, fault)
            await self._hold(fault)
        finally:
            limits.release(tenant_id)
        response.headers.update(limits.headers(tenant_id))
        return response

    def _idempotent(self, request: Request, body: bytes, tenant_id: str, fault: Fault | None) -> Response:
        """Carry the call out once per Idempotency-Key; replay the first reply to a repeat."""
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method == "GET":
            return self._resource(request, body, tenant_id, fault)
        if len(key) > MAX_IDEMPOTENCY_KEY:
            return _xero_error(10, "ValidationException",
                               f"Idempotency-Key is {len(key)} characters long; at most {MAX_IDEMPOTENCY_KEY}")
        fingerprint = _fingerprint(request, body)
        remembered = self._idempotency.get((tenant_id, key))
        if remembered is not None:
            first_fingerprint, status, content = remembered
            if first_fingerprint != fingerprint:
                return _xero_error(10, "ValidationException",
                                   f"Idempotency-Key {key} was already used for a different request")
            return Response(content, status_code=status, media_type="application/json")
        response = self._resource(request, body, tenant_id, fault)
        self._idempotency[(tenant_id, key)] = (fingerprint, response.status_code, bytes(response.body))
        return response

    def _resource(self, request: Request, body: bytes, tenant_id: str, fault: Fault | None) -> Response:
        collection = request.path_params["collection"]
        if collection not in KINDS:
            return PlainTextResponse(f"{API_ROOT}/{collection} is not served by the fake Xero", status_code=404)
        books = self.organisations[tenant_id]
        object_id = request.path_params.get("object_id")
        if collection == "Payments" and object_id and request.method == "POST":
            return PlainTextResponse("Deleting payments is not served by the fake Xero", status_code=404)
        if request.method == "GET":
            return self._read(request, books, collection, object_id)
        return self._write(request, body, books, collection, object_id, fault)

    def _envelope(self, collection: str, items: list[dict], pagination: dict | None = None) -> JSONResponse:
        body = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": self.provider_name,
                "DateTimeUTC": now_ms_date()}
        if pagination:
            body["pagination"] = pagination
        body[collection] = items
        return JSONResponse(body)

    def _read(self, request: Request, books: Books, collection: str, object_id: str | None) -> Response:
        if object_id is not None:
            found = books.get(collection, object_id)
            if found is None:
                return PlainTextResponse("The resource you're looking for cannot be found", status_code=404)
            return self._envelope(collection, [found])
        query = request.query_params
        one_of = {field_name: query[name].split(",")
                  for name, field_name in _LIST_PARAMETERS.get(collection, {}).items() if query.get(name)}
        try:
            records = books.select(collection, query.get("where"), one_of)
        except WhereError as problem:
            return _xero_error(16, "QueryParseException", str(problem))
        if "page" not in query:
            return self._envelope(collection, records)
        page = max(1, int(query["page"]))
        size = min(MAX_PAGE_SIZE, max(1, int(query.get("pageSize") or PAGE_SIZE)))
        pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(len(records) / size),
                      "itemCount": len(records)}
        return self._envelope(collection, records[(page - 1) * size:page * size], pagination)

    def _write(self, request: Request, body: bytes, books: Books, collection: str, object_id: str | None,
               fault: Fault | None) -> Response:
        payload = json.loads(body)
        kind = KINDS[collection]
        single = collection == "Payments" and request.method == "POST"  # POST /Payments takes one Payment
        elements = [payload] if single else payload.get(collection, [])
        if object_id is not None:
            elements = [{**element, kind.id_field: object_id} for element in elements]
        summarised = request.query_params.get("summarizeErrors", "true").lower() != "false"
        books.begin()
        saved, rejected = [], []
        for element in elements:
            injected = ([fault.message] if fault and fault.kind == "validation"
                        and fault.element_contains in json.dumps(element, ensure_ascii=False) else [])
            stored, errors = (None, injected) if injected else books.save(collection, element)
            if errors:
                rejected.append(_rejected(element, errors, kind.error_flag, summarised=summarised))
                saved.append(rejected[-1])
            else:
                saved.append({**stored, "StatusAttributeString": "OK"} if not summarised else stored)
        if rejected and summarised:
            books.rollback()
            return _validation_error(rejected)
        books.commit()
        return self._envelope(collection, saved)
