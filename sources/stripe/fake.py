"""A stateful fake of the Stripe API's list endpoints on 127.0.0.1, for tests and demos.

It answers what ``sources.stripe`` reads — ``GET /v1/{balance_transactions,charges,refunds,disputes,
payouts}`` — as Stripe does: list objects (``object: "list"``, ``data``, ``has_more``), newest
first, ``limit`` 1-100 with ``starting_after``/``ending_before`` cursors, ``created`` (and for
payouts ``arrival_date``) range filters, ``payout=`` on balance transactions (automatic payouts
only), Bearer (or Basic) API keys, Stripe's error bodies.

Objects have the shapes of the official fixtures (``specs/stripe/fixtures3.json``, API version
2023-08-16). Every request is checked against the operation's declared parameters in
``spec3.json`` (``SpecCheck``); what does not conform is kept in ``store.spec_violations``.
openapi-core cannot do it: it decodes ``deepObject`` only for ``type: object`` parameters, and
Stripe's ``created`` is ``anyOf`` an object or an integer, so every request would fail there.

Knobs for tests: ``fail_next`` (the next N requests answer a status, 429 without Retry-After
as Stripe sometimes sends it, or 5xx), ``revoke`` (a key 401s as an expired or rolled key does,
from now or after a few more requests),
``put`` with any dict (a malformed object is served as it is).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sources.local_server import LocalServer

API_KEY = "sk_test_51LedgerflowFakeKey0000000000"
LISTS = {"balance_transactions": "balance_transaction", "charges": "charge", "refunds": "refund",
         "disputes": "dispute", "payouts": "payout"}
_RANGES = {"payouts": ("created", "arrival_date")}  # range filters beyond ``created``
_OPERATORS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
              "lte": lambda a, b: a <= b}
_id_counter = itertools.count(1)


def stripe_id(prefix: str) -> str:
    return f"{prefix}_1Lf{next(_id_counter):021d}"


def unix(moment: datetime | date) -> int:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return int(moment.timestamp())


# --- objects shaped like fixtures3.json ------------------------------------------------------

def balance_transaction(*, id: str, amount: int, currency: str, created: int, type: str, source: str | None,
                        fee: int = 0, status: str = "available", description: str | None = None) -> dict:
    return {"amount": amount, "available_on": created + 2 * 86400, "created": created, "currency": currency,
            "description": description, "exchange_rate": None, "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": currency, "description": "Stripe fees",
                             "type": "stripe_fee"}] if fee else [],
            "id": id, "net": amount - fee, "object": "balance_transaction", "reporting_category": type,
            "source": source, "status": status, "type": type}


def charge(*, id: str, amount: int, currency: str, created: int, balance_transaction: str | None,
           amount_refunded: int = 0, disputed: bool = False, description: str | None = None) -> dict:
    return {"amount": amount, "amount_captured": amount, "amount_refunded": amount_refunded, "application": None,
            "application_fee": None, "application_fee_amount": None, "balance_transaction": balance_transaction,
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "calculated_statement_descriptor": "LEDGERFLOW", "captured": True, "created": created,
            "currency": currency, "customer": None, "description": description, "disputed": disputed,
            "failure_balance_transaction": None, "failure_code": None, "failure_message": None, "fraud_details": {},
            "id": id, "invoice": None, "livemode": False, "metadata": {}, "object": "charge", "on_behalf_of": None,
            "outcome": None, "paid": True, "payment_intent": None, "payment_method": None,
            "payment_method_details": None, "receipt_email": None, "receipt_number": None, "receipt_url": None,
            "refunded": amount_refunded == amount, "refunds": None, "review": None, "shipping": None,
            "source_transfer": None, "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "succeeded", "transfer_data": None, "transfer_group": None}


def refund(*, id: str, amount: int, currency: str, created: int, charge: str, balance_transaction: str | None,
           status: str = "succeeded") -> dict:
    return {"amount": amount, "balance_transaction": balance_transaction, "charge": charge, "created": created,
            "currency": currency, "id": id, "metadata": {}, "object": "refund", "payment_intent": None,
            "reason": "requested_by_customer", "receipt_number": None, "source_transfer_reversal": None,
            "status": status, "transfer_reversal": None}


def dispute(*, id: str, amount: int, currency: str, created: int, charge: str,
            status: str = "needs_response") -> dict:
    return {"amount": amount, "balance_transactions": [], "charge": charge, "created": created, "currency": currency,
            "evidence": {}, "evidence_details": {"due_by": created + 14 * 86400, "has_evidence": False,
                                                 "past_due": False, "submission_count": 0},
            "id": id, "is_charge_refundable": False, "livemode": False, "metadata": {}, "object": "dispute",
            "payment_intent": None, "payment_method_details": None, "reason": "fraudulent", "status": status}


def payout(*, id: str, amount: int, currency: str, created: int, arrival_date: int, status: str = "pending",
           balance_transaction: str | None = None, automatic: bool = True) -> dict:
    return {"amount": amount, "arrival_date": arrival_date, "automatic": automatic,
            "balance_transaction": balance_transaction, "created": created, "currency": currency,
            "description": "STRIPE PAYOUT", "destination": "ba_1LfFakeBankAccount00000",
            "failure_balance_transaction": None, "failure_code": None, "failure_message": None, "id": id,
            "livemode": False, "metadata": {}, "method": "standard", "object": "payout", "original_payout": None,
            "reconciliation_status": "completed" if status == "paid" else "in_progress", "reversed_by": None,
            "source_type": "card", "statement_descriptor": None, "status": status, "type": "bank_account"}


# --- the spec check --------------------------------------------------------------------------

@functools.cache
def _operations(spec_path: Path) -> dict:
    with open(spec_path, encoding="utf-8") as spec_file:
        spec = json.load(spec_file)  # ~1.3 s for the 6 MB description: once per process
    operations = {}
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in item.items():
            if isinstance(operation, dict) and "parameters" in operation:
                operations[(method.upper(), path)] = (pattern, operation["parameters"])
    schemes = spec["components"]["securitySchemes"]
    return {"operations": operations, "schemes": {s["scheme"].lower() for s in schemes.values()}}


class SpecCheck:
    """A request checked against ``spec3.json``: the operation exists, every query parameter is one
    it declares, ``deepObject`` parameters use only their declared keys, values have the declared
    type (integer) and length, and the credentials use a declared scheme (Bearer or Basic)."""

    def __init__(self, spec_path: Path) -> None:
        self._spec = _operations(Path(spec_path).resolve())

    def errors(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]) -> list[str]:
        found = [params for (m, _), (pattern, params) in self._spec["operations"].items()
                 if m == method and pattern.match(path)]
        if not found:
            return [f"{method} {path}: no such operation in spec3.json"]
        declared = {p["name"]: p for p in found[0] if p["in"] == "query"}
        problems = []
        scheme = headers.get("authorization", "").split(" ", 1)[0].lower()
        if scheme not in self._spec["schemes"]:
            problems.append(f"{method} {path}: Authorization scheme {scheme or '(none)'!r} is not one of "
                            f"{sorted(self._spec['schemes'])}")
        for name, value in query:
            base, _, key = name.partition("[")
            key = key.removesuffix("]")
            parameter = declared.get(base)
            if parameter is None:
                problems.append(f"{method} {path}: query parameter {name!r} is not declared")
                continue
            problem = _value_problem(parameter, key if "[" in name else None, value)
            if problem:
                problems.append(f"{method} {path}: {name}={value!r} {problem}")
        return problems


def _value_problem(parameter: dict, key: str | None, value: str) -> str | None:
    schema = parameter["schema"]
    options = schema.get("anyOf", [schema])
    if key is not None:
        if parameter.get("style") != "deepObject":
            return "uses brackets but the parameter is not a deepObject"
        objects = [o for o in options if o.get("type") == "object"]
        arrays = [o for o in options if o.get("type") == "array"]
        if arrays and key == "":
            return _scalar_problem(arrays[0]["items"], value)
        for option in objects:
            if key in option.get("properties", {}):
                return _scalar_problem(option["properties"][key], value)
        return f"has no key {key!r} in the spec"
    scalars = [o for o in options if o.get("type") not in {"object", "array"}]
    if not scalars:
        return "must be given with brackets (deepObject)"
    problems = [_scalar_problem(option, value) for option in scalars]
    return None if None in problems else problems[0]


def _scalar_problem(schema: dict, value: str) -> str | None:
    if schema.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
        return "is not an integer"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"is longer than {schema['maxLength']}"
    if "enum" in schema and value not in schema["enum"]:
        return f"is not one of {schema['enum']}"
    return None


# --- the store and the app -------------------------------------------------------------------

@dataclass
class Received:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    status: int = 0


@dataclass
class StripeStore:
    """Objects by list, in the order Stripe lists them (newest first); faults; what was asked."""

    spec_path: Path | None = None
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {name: {} for name in LISTS})
    settled_by: dict[str, list[str]] = field(default_factory=dict)  # payout id -> balance transaction ids
    keys: set[str] = field(default_factory=lambda: {API_KEY})
    _revoke_at: dict[str, int] = field(default_factory=dict)  # key -> requests answered before it expires
    faults: list[int] = field(default_factory=list)  # statuses of the next requests
    requests: list[Received] = field(default_factory=list)
    spec_violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sequence: itertools.count = field(default_factory=itertools.count)
    _order: dict[str, int] = field(default_factory=dict)

    def put(self, listing: str, obj: dict) -> dict:
        """Add an object, or replace it (a status change) keeping its place in the list."""
        with self.lock:
            key = obj.get("id") or f"(no id {next(self._sequence)})"
            self._order.setdefault(key, next(self._sequence))
            self.objects[listing][key] = obj
        return obj

    def update(self, listing: str, object_id: str, **changes) -> dict:
        return self.put(listing, {**self.objects[listing][object_id], **changes})

    def add_charge(self, amount: int, currency: str, created: datetime, *, fee: int = 0) -> dict:
        charge_id, txn_id = stripe_id("ch"), stripe_id("txn")
        self.put("balance_transactions", balance_transaction(
            id=txn_id, amount=amount, currency=currency, created=unix(created), type="charge", source=charge_id,
            fee=fee))
        return self.put("charges", charge(id=charge_id, amount=amount, currency=currency, created=unix(created),
                                          balance_transaction=txn_id))

    def add_refund(self, of_charge: dict, amount: int, created: datetime) -> dict:
        refund_id, txn_id = stripe_id("re"), stripe_id("txn")
        currency = of_charge["currency"]
        self.put("balance_transactions", balance_transaction(
            id=txn_id, amount=-amount, currency=currency, created=unix(created), type="refund", source=refund_id))
        self.update("charges", of_charge["id"], amount_refunded=of_charge["amount_refunded"] + amount,
                    refunded=of_charge["amount_refunded"] + amount == of_charge["amount"])
        return self.put("refunds", refund(id=refund_id, amount=amount, currency=currency, created=unix(created),
                                          charge=of_charge["id"], balance_transaction=txn_id))

    def add_dispute(self, of_charge: dict, created: datetime) -> dict:
        self.update("charges", of_charge["id"], disputed=True)
        return self.put("disputes", dispute(id=stripe_id("dp"), amount=of_charge["amount"],
                                            currency=of_charge["currency"], created=unix(created),
                                            charge=of_charge["id"]))

    def add_payout(self, created: datetime, arrival: date, *, settles: list[str] | None = None,
                   amount: int | None = None, currency: str = "eur", status: str = "pending") -> dict:
        """An automatic payout of the given balance transactions (their net, unless ``amount`` is given)."""
        settles = settles or []
        transactions = self.objects["balance_transactions"]
        total = sum(transactions[t]["net"] for t in settles) if amount is None else amount
        payout_id, txn_id = stripe_id("po"), stripe_id("txn")
        self.put("balance_transactions", balance_transaction(
            id=txn_id, amount=-total, currency=currency, created=unix(created), type="payout", source=payout_id))
        self.settled_by[payout_id] = [*settles, txn_id]
        return self.put("payouts", payout(id=payout_id, amount=total, currency=currency, created=unix(created),
                                          arrival_date=unix(arrival), status=status, balance_transaction=txn_id))

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.faults.extend([status] * count)

    def revoke(self, key: str = API_KEY, *, after: int = 0) -> None:
        """The key expires (401s) once ``after`` more requests were answered: mid-run, if > 0."""
        with self.lock:
            self._revoke_at[key] = len(self.requests) + after

    def listed(self, listing: str, filters: dict[str, dict[str, int]], payout_id: str | None) -> list[dict]:
        with self.lock:
            chosen = self.objects[listing].items()
            if payout_id is not None:
                chosen = [(k, o) for k, o in chosen if k in self.settled_by.get(payout_id, [])]
            rows = [(k, o) for k, o in chosen if all(
                isinstance(o.get(name), int) and _OPERATORS[op](o[name], bound)
                for name, bounds in filters.items() for op, bound in bounds.items())]
            rows.sort(key=lambda pair: (pair[1].get("created") if isinstance(pair[1].get("created"), int) else 0,
                                        self._order[pair[0]]), reverse=True)
            return [o for _, o in rows]


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind}}
    if code:
        body["error"]["code"] = code
    if param:
        body["error"]["param"] = param
    return JSONResponse(body, status_code=status)


def _key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credentials).decode().split(":", 1)[0]
        except ValueError:
            return None
    return None


def _filters(listing: str, query: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    filters: dict[str, dict[str, int]] = {}
    for name, value in query:
        base, _, op = name.partition("[")
        if base in _RANGES.get(listing, ("created",)):
            op = op.removesuffix("]") or "eq"
            bounds = filters.setdefault(base, {})
            if op == "eq":
                bounds.update(gte=int(value), lte=int(value))
            else:
                bounds[op] = int(value)
    return filters


def create_app(store: StripeStore) -> Starlette:
    checker = SpecCheck(store.spec_path) if store.spec_path else None

    async def list_objects(request: Request) -> JSONResponse:
        listing = request.path_params["listing"]
        query = list(request.query_params.multi_items())
        received = Received("GET", request.url.path, query, {k.lower(): v for k, v in request.headers.items()})
        with store.lock:
            expired = store._revoke_at.get(_key(request) or "", len(store.requests) + 1) <= len(store.requests)
            store.requests.append(received)
            fault = store.faults.pop(0) if store.faults else None
        if checker is not None:
            store.spec_violations.extend(checker.errors("GET", request.url.path, query, received.headers))
        response = _answer(store, listing, query, request, fault, expired)
        received.status = response.status_code
        return response

    return Starlette(routes=[Route("/v1/{listing}", list_objects, methods=["GET"])])


def _answer(store: StripeStore, listing: str, query: list[tuple[str, str]], request: Request,
            fault: int | None, expired: bool) -> JSONResponse:
    key = _key(request)
    if key is None:
        return _error(401, "You did not provide an API key. You need to provide your API key in the "
                           "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    if expired:
        return _error(401, f"Expired API Key provided: {key[:8]}****{key[-4:]}", code="api_key_expired")
    if key not in store.keys:
        return _error(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")
    if fault == 429:  # Stripe sends some 429s without a Retry-After header
        return _error(429, "Too many requests hit the API too quickly.", code="rate_limit")
    if fault is not None:
        return _error(fault, "An unknown error occurred", kind="api_error")
    if listing not in LISTS:
        return _error(404, f"Unrecognized request URL (GET: /v1/{listing}).")
    params = dict(query)
    try:
        limit = int(params.get("limit", "10"))
        filters = _filters(listing, query)
    except ValueError:
        return _error(400, "Invalid integer", param="limit")
    if not 1 <= limit <= 100:
        return _error(400, f"Invalid integer: {limit}; must be between 1 and 100", param="limit")
    payout_id = params.get("payout") if listing == "balance_transactions" else None
    if payout_id is not None:
        found = store.objects["payouts"].get(payout_id)
        if found is None:
            return _error(404, f"No such payout: '{payout_id}'", code="resource_missing", param="payout")
        if not found.get("automatic"):
            return _error(400, "Balance transaction history can only be filtered on automatic transfers, "
                               "not manual.", param="payout")
    rows = store.listed(listing, filters, payout_id)
    ids = [o.get("id") for o in rows]
    if "starting_after" in params:
        if params["starting_after"] not in ids:
            return _error(400, f"No such object: '{params['starting_after']}'", param="starting_after")
        rows = rows[ids.index(params["starting_after"]) + 1:]
    elif "ending_before" in params:
        if params["ending_before"] not in ids:
            return _error(400, f"No such object: '{params['ending_before']}'", param="ending_before")
        rows = rows[:ids.index(params["ending_before"])][-limit:]
    return JSONResponse({"object": "list", "data": rows[:limit], "has_more": len(rows) > limit,
                         "url": f"/v1/{listing}"})


class StripeServer(LocalServer):
    name = "fake Stripe API"

    def __init__(self, store: StripeStore, port: int = 0) -> None:
        self._store = store
        super().__init__(self._app(store), port)

    def _app(self, store: StripeStore):
        app = create_app(store)

        async def current(scope, receive, send):  # a test may swap the store between tests
            await self._apps[id(self._store)](scope, receive, send)

        self._apps = {id(store): app}
        return current

    @property
    def store(self) -> StripeStore:
        return self._store

    @store.setter
    def store(self, store: StripeStore) -> None:
        self._apps.setdefault(id(store), create_app(store))
        self._store = store
