"""A stateful fake of QuickBooks Online's V3 accounting API on 127.0.0.1, for tests and benchmarks.

It serves what a client posting journals and invoices needs, shaped as QBO answers in JSON:

* ``POST /v3/company/{realm}/{journalentry|invoice|creditmemo|payment|customer}`` creates,
  ``GET .../{entity}/{id}`` reads (accounts too), ``GET|POST .../query`` runs
  ``select * from <Entity> [where <Field> = '<value>' [and ...]] [startposition N] [maxresults M]``,
  ``POST .../batch`` runs up to 30 ``BatchItemRequest`` items (create or query);
* ``POST /oauth2/v1/tokens/bearer``: OAuth 2.0 codes and refresh tokens for access tokens.
  Refresh tokens rotate, and the old one is refused at once (``invalid_grant``). Real QBO
  may hand back the same refresh token for a day; being stricter checks that a client
  always keeps the newest one.

Every JSON entity body is checked against Intuit's XSD (``qbo_schema``); what does not fit is
kept in ``spec_violations`` and answered with a 400 ValidationFault. Business rules: a journal
entry's debits equal its credits, ``AccountRef``/``CustomerRef``/linked transactions exist,
lines say their ``DetailType``, a customer's ``DisplayName`` is unique, Amount = Qty × UnitPrice.

Choices where Intuit's documentation is silent:

* ``requestid`` applies to POSTs; the first reply of a processed request (created object or
  ValidationFault) is replayed byte for byte. Throttled, unauthorised and injected 5xx replies
  are not kept, so the client may retry them with the same id.
* Rate limits count accepted requests only, per realm, in sliding windows on the injected
  clock; a batch counts once against 500/min and 10/s and once against 40 batches/min. The
  429 says ``Retry-After: 60`` for the minute limits (QBO asks to wait 60 s) and ``1`` for
  the per-second limit.
* Access tokens last 3600 s on the injected clock, those given to the constructor too.
* A query with no match answers ``{"QueryResponse": {}}`` as QBO does; ``maxresults`` is
  capped at 1000; results come in Id order.
* Duplicate ``DocNumber``s are accepted (QBO only warns), so tests can see a client that
  posts twice.

Not served: updates, deletes, voids, change data capture, reports, tax and discount
arithmetic, multi-currency. The fake always answers JSON; a request without
``Accept: application/json`` (QBO would answer XML) is recorded in ``spec_violations``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import takewhile
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from destinations.apis.fakes.qbo_schema import QBO_XSD_DIR, SpecViolation, check_payload, qbo_schema
from sources.local_server import LocalServer

REALM = "9341453050298765"
ACCESS_TOKEN = "fake-qbo-access-token"
CLIENT_ID = "ABfakeQboClient0000000000000000000000000000000000"
CLIENT_SECRET = "fake-qbo-client-secret"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8_726_400  # what QBO answers in x_refresh_token_expires_in
MAX_REQUEST_ID, MAX_BATCH_REQUEST_ID = 50, 36
MAX_BATCH_ITEMS = 30
DEFAULT_MAX_RESULTS, MAX_QUERY_RESULTS = 100, 1000
HOME_CURRENCY = {"value": "USD", "name": "United States Dollar"}
SANDBOX_ACCOUNTS = {  # a few accounts of an Intuit sandbox company (id -> name)
    "35": "Checking",
    "84": "Accounts Receivable (A/R)",
    "33": "Accounts Payable (A/P)",
    "79": "Sales of Product Income",
    "1": "Services",
    "89": "Board of Equalization Payable",
    "7": "Advertising",
}

CREATABLE = {"journalentry": "JournalEntry", "invoice": "Invoice", "creditmemo": "CreditMemo",
             "payment": "Payment", "customer": "Customer"}
READABLE = {**CREATABLE, "account": "Account"}
QUERY_FIELDS = ("Id", "DocNumber", "PrivateNote", "DisplayName", "Name")
MARKED_FIELDS = ("DocNumber", "PrivateNote", "DisplayName")  # where a "validation" fault's marker is looked for
FAULT_KINDS = ("429", "500", "503", "timeout_after_commit", "validation")
BUSINESS_ERROR = "A business validation error has occurred while processing your request"


# --- replies ----------------------------------------------------------------------------------

def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, rendered once so that a ``requestid`` replay is the original byte for byte."""

    status: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hold the answer back (``timeout_after_commit``)


def _json_reply(status: int, body: dict, headers: Mapping[str, str] | None = None) -> Reply:
    # QBO sends amounts as JSON numbers; Decimal -> float keeps two-decimal amounts exact in text.
    return Reply(status, json.dumps(body, default=float).encode(), dict(headers or {}))


@dataclass(frozen=True)
class QboError:
    code: str
    message: str
    detail: str
    element: str = ""

    def as_json(self) -> dict:
        return {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}


class Refused(Exception):
    """A request QBO turns down with a Fault; raised by the rules, answered by the handlers."""

    def __init__(self, *errors: QboError, fault_type: str = "ValidationFault") -> None:
        super().__init__("; ".join(error.detail for error in errors))
        self.errors, self.fault_type = errors, fault_type

    def fault(self) -> dict:
        return {"Error": [error.as_json() for error in self.errors], "type": self.fault_type}


def _fault_reply(refused: Refused, status: int = 400, headers: Mapping[str, str] | None = None) -> Reply:
    return _json_reply(status, {"Fault": refused.fault(), "time": _timestamp()}, headers)


def _missing(element: str) -> Refused:
    return Refused(QboError("2020", "Required param missing, need to supply the required value for the API",
                            f"Required parameter {element} is missing in the request", element))


def _business(detail: str, element: str = "", code: str = "6000") -> Refused:
    return Refused(QboError(code, BUSINESS_ERROR, f"Business Validation Error: {detail}", element))


def _invalid(detail: str, element: str = "") -> Refused:
    return Refused(QboError("2010", "Request has invalid or unsupported property", detail, element))


def _unauthorized() -> Reply:
    body = {"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                 "detail": "Token expired or not valid", "code": "3200"}],
                      "type": "AUTHENTICATION"}, "time": _timestamp()}
    return _json_reply(401, body, {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})


def _forbidden(realm: str) -> Reply:
    error = QboError("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                     f"the access token is not for company {realm}")
    return _fault_reply(Refused(error, fault_type="AuthorizationFault"), 403)


def _throttled(retry_after: int, why: str) -> Reply:
    error = QboError("3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429", why)
    return _fault_reply(Refused(error, fault_type="ThrottlingFault"), 429, {"Retry-After": str(retry_after)})


def _server_error(status: int) -> Reply:
    message = "An application error has occurred while processing your request" if status == 500 \
        else "Service Unavailable"
    return _fault_reply(Refused(QboError("10000", message, f"System Failure Error: injected {status}"),
                                fault_type="SystemFault"), status)


# --- state ------------------------------------------------------------------------------------

@dataclass
class Company:
    """One QBO company (realm): its objects by entity and Id, and the replies kept per requestid."""

    realm_id: str
    entities: dict[str, dict[str, dict]] = field(default_factory=lambda: {name: {} for name in READABLE.values()})
    replies: dict[str, Reply] = field(default_factory=dict)
    last_ids: dict[str, int] = field(default_factory=dict)

    def put(self, entity: str, obj: dict) -> dict:
        """Store ``obj``, giving it the next Id of its entity unless it has one."""
        if "Id" not in obj:
            obj["Id"] = str(self.last_ids.get(entity, 0) + 1)
        if obj["Id"].isdigit():
            self.last_ids[entity] = max(self.last_ids.get(entity, 0), int(obj["Id"]))
        self.entities[entity][obj["Id"]] = obj
        return obj


@dataclass
class Grant:
    realm: str
    expires_at: float  # not money: seconds


@dataclass
class InjectedFault:
    kind: str
    count: int
    path_contains: str | None
    marker: str | None
    delay: float  # not money: seconds

    def matches(self, target: str) -> bool:
        if self.path_contains is None:
            return target.startswith("/v3/")
        return self.path_contains in target


@dataclass(frozen=True)
class LimitViolation:
    realm: str
    limit: str  # "per_minute", "per_second" or "batch_per_minute"
    at: float  # not money: seconds; on the injected clock


class RateWindows:
    """Sliding windows of accepted request times per realm, on an injectable clock."""

    def __init__(self, per_minute: int, per_second: int, batch_per_minute: int) -> None:
        self.per_minute, self.per_second, self.batch_per_minute = per_minute, per_second, batch_per_minute
        self._requests: dict[str, deque[float]] = {}
        self._batches: dict[str, deque[float]] = {}
        self.max_per_minute = self.max_per_second = 0

    def admit(self, realm: str, now: float, is_batch: bool) -> str | None:  # not money: seconds
        """Record the request and return None, or return the name of the limit it would break."""
        requests = self._window(self._requests, realm, now)
        batches = self._window(self._batches, realm, now)
        last_second = sum(1 for _ in takewhile(lambda at: at > now - 1, reversed(requests)))
        if len(requests) >= self.per_minute:
            return "per_minute"
        if is_batch and len(batches) >= self.batch_per_minute:
            return "batch_per_minute"
        if last_second >= self.per_second:
            return "per_second"
        requests.append(now)
        if is_batch:
            batches.append(now)
        self.max_per_minute = max(self.max_per_minute, len(requests))
        self.max_per_second = max(self.max_per_second, last_second + 1)
        return None

    @staticmethod
    def _window(windows: dict[str, deque[float]], realm: str, now: float) -> deque[float]:  # not money: seconds
        window = windows.setdefault(realm, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        return window


@dataclass(frozen=True)
class ApiRequest:
    method: str
    realm: str
    target: str  # path?query, what ``path_contains`` is matched against
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    is_batch: bool = False


# --- business rules ---------------------------------------------------------------------------

def _decimal(value: object, element: str) -> Decimal:
    if value is None:
        raise _missing(element)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _invalid(f"{element}: {value!r} is not a decimal number", element) from None


def _reference(company: Company, entity: str, ref: object, element: str) -> str:
    """The Id ``ref`` names, which must be one of the company's ``entity`` objects."""
    value = ref.get("value") if isinstance(ref, dict) else None
    if value is None:
        raise _missing(element)
    if str(value) not in company.entities[entity]:
        raise Refused(QboError("2500", "Invalid Reference Id",
                               f"Invalid Reference Id : {entity}s element id {value} not found", element))
    return str(value)


def _lines(document: dict, entity: str) -> list[dict]:
    """The lines, each naming its detail in ``DetailType`` as QBO's JSON requires."""
    lines = document.get("Line")
    if not lines:
        raise _missing(f"{entity}.Line")
    for index, line in enumerate(lines):
        detail_type = line.get("DetailType")
        if detail_type is None:
            raise _missing(f"Line[{index}].DetailType")
        if detail_type != "DescriptionOnly" and detail_type not in line:
            raise _missing(f"Line[{index}].{detail_type}")
    return lines


def _numbered(lines: list[dict]) -> list[dict]:
    return [{"Id": str(number), **line} for number, line in enumerate(lines, start=1)]


def _transaction_defaults(document: dict) -> dict:
    return {"TxnDate": document.get("TxnDate", datetime.now(UTC).date().isoformat()),
            "CurrencyRef": document.get("CurrencyRef", HOME_CURRENCY)}


def journal_entry_rules(company: Company, entry: dict) -> dict:
    """Debits equal credits, every account exists; answers the fields QBO fills in."""
    totals = {"Debit": Decimal(0), "Credit": Decimal(0)}
    lines = _lines(entry, "JournalEntry")
    for index, line in enumerate(lines):
        where = f"Line[{index}].JournalEntryLineDetail"
        detail = line.get("JournalEntryLineDetail")
        if not isinstance(detail, dict):
            raise _missing(where)
        if detail.get("PostingType") not in totals:
            raise _missing(f"{where}.PostingType")
        _reference(company, "Account", detail.get("AccountRef"), f"{where}.AccountRef")
        party = detail.get("Entity") or {}
        if party.get("Type") == "Customer":
            _reference(company, "Customer", party.get("EntityRef"), f"{where}.Entity.EntityRef")
        totals[detail["PostingType"]] += _decimal(line.get("Amount"), f"Line[{index}].Amount")
    if totals["Debit"] != totals["Credit"]:
        raise _business(f"Transaction is not balanced: debits {totals['Debit']} and credits {totals['Credit']}")
    return {**_transaction_defaults(entry), "Line": _numbered(lines), "TotalAmt": totals["Debit"],
            "Adjustment": entry.get("Adjustment", False)}


def _sales_total(company: Company, document: dict, entity: str) -> Decimal:
    """An invoice's or credit memo's total: the sum of its item lines, each Qty × UnitPrice when both are given."""
    _reference(company, "Customer", document.get("CustomerRef"), "CustomerRef")
    total = Decimal(0)
    for index, line in enumerate(_lines(document, entity)):
        detail = line.get("SalesItemLineDetail")
        if detail is None:
            continue
        amount = _decimal(line.get("Amount"), f"Line[{index}].Amount")
        if "Qty" in detail and "UnitPrice" in detail:
            product = _decimal(detail["Qty"], "Qty") * _decimal(detail["UnitPrice"], "UnitPrice")
            if product != amount:
                raise _business(f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                                f"Line[{index}].Amount", code="6070")
        total += amount
    return total


def invoice_rules(company: Company, invoice: dict) -> dict:
    total = _sales_total(company, invoice, "Invoice")
    return {**_transaction_defaults(invoice), "Line": _numbered(invoice["Line"]), "TotalAmt": total,
            "Balance": total}


def credit_memo_rules(company: Company, memo: dict) -> dict:
    total = _sales_total(company, memo, "CreditMemo")
    return {**_transaction_defaults(memo), "Line": _numbered(memo["Line"]), "TotalAmt": total,
            "Balance": total, "RemainingCredit": total}


def payment_rules(company: Company, payment: dict) -> dict:
    """Linked invoices and credit memos exist and are not over-applied; their balances go down."""
    customer = _reference(company, "Customer", payment.get("CustomerRef"), "CustomerRef")
    total = _decimal(payment.get("TotalAmt"), "TotalAmt")
    applied, effects = Decimal(0), []
    for index, line in enumerate(payment.get("Line") or []):
        amount = _decimal(line.get("Amount"), f"Line[{index}].Amount")
        for link in line.get("LinkedTxn") or []:
            target, balance_field = _linked(company, link, customer, f"Line[{index}].LinkedTxn")
            if amount > target[balance_field]:
                raise _business(f"Line[{index}] applies {amount} to {link['TxnType']} {target['Id']}, "
                                f"whose open balance is {target[balance_field]}", f"Line[{index}].Amount")
            applied += amount if link["TxnType"] == "Invoice" else -amount
            effects.append((target, balance_field, amount))
    if applied > total:
        raise _business(f"the lines apply {applied}, more than the payment's TotalAmt {total}", "TotalAmt")
    for target, balance_field, amount in effects:
        target[balance_field] -= amount
        if balance_field == "RemainingCredit":
            target["Balance"] = target[balance_field]
    return {**_transaction_defaults(payment), "UnappliedAmt": total - applied}


def _linked(company: Company, link: dict, customer: str, element: str) -> tuple[dict, str]:
    txn_type, txn_id = link.get("TxnType"), str(link.get("TxnId"))
    if txn_type not in ("Invoice", "CreditMemo"):
        raise _invalid(f"{element}.TxnType {txn_type!r}: the fake links payments to Invoice or CreditMemo", element)
    target = company.entities[txn_type].get(txn_id)
    if target is None:
        raise Refused(QboError("2500", "Invalid Reference Id",
                               f"Invalid Reference Id : {txn_type}s element id {txn_id} not found", element))
    if str(target["CustomerRef"]["value"]) != customer:
        raise _business(f"{txn_type} {txn_id} belongs to another customer", element)
    return target, "Balance" if txn_type == "Invoice" else "RemainingCredit"


def customer_rules(company: Company, customer: dict) -> dict:
    """A customer's DisplayName (given, or made from the names) is unique in the company."""
    name = customer.get("DisplayName") or " ".join(
        str(customer[part]) for part in ("GivenName", "FamilyName") if customer.get(part))
    if not name:
        raise _missing("DisplayName")
    same = next((c for c in company.entities["Customer"].values() if c["DisplayName"] == name), None)
    if same is not None:
        raise Refused(QboError("6240", "Duplicate Name Exists Error",
                               f"The name supplied already exists. : Id={same['Id']}", "DisplayName"))
    return {"DisplayName": name, "Active": customer.get("Active", True), "Balance": Decimal(0)}


RULES: dict[str, Callable[[Company, dict], dict]] = {
    "JournalEntry": journal_entry_rules, "Invoice": invoice_rules, "CreditMemo": credit_memo_rules,
    "Payment": payment_rules, "Customer": customer_rules,
}


# --- queries ----------------------------------------------------------------------------------

_CONDITION = r"(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'"
_QUERY = re.compile(
    rf"""select\s+\*\s+from\s+(?P<entity>\w+)
         (?:\s+where\s+(?P<where>{_CONDITION}(?:\s+and\s+{_CONDITION})*))?
         (?:\s+startposition\s+(?P<start>\d+))?
         (?:\s+maxresults\s+(?P<max>\d+))?""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL)
_QUERYABLE = {entity.lower(): entity for entity in READABLE.values()}


@dataclass(frozen=True)
class Query:
    entity: str
    conditions: tuple[tuple[str, str], ...]
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def parse_query(text: str) -> Query:
    """The small part of QBO's query language the fake understands; anything else is a parser error."""
    match = _QUERY.fullmatch(text.strip())
    if match is None:
        raise Refused(QboError("4000", "Error parsing query",
                               f"QueryParserError: the fake understands select * from <Entity> [where <Field> = "
                               f"'<value>' [and ...]] [startposition N] [maxresults M], got {text!r}"))
    entity = _QUERYABLE.get(match["entity"].lower())
    if entity is None:
        raise Refused(QboError("4000", "Error parsing query", f"QueryParserError: Invalid entity {match['entity']}"))
    conditions = tuple((name, re.sub(r"\\(.)", r"\1", value))
                       for name, value in re.findall(_CONDITION, match["where"] or ""))
    for name, _ in conditions:
        if name not in QUERY_FIELDS:
            raise Refused(QboError("4001", "Invalid query",
                                   f"QueryValidationError: property '{name}' is not queryable in the fake "
                                   f"(it filters on {', '.join(QUERY_FIELDS)})"))
    start = max(int(match["start"] or 1), 1)
    return Query(entity, conditions, start, min(int(match["max"] or DEFAULT_MAX_RESULTS), MAX_QUERY_RESULTS))


def run_query(company: Company, query: Query) -> dict:
    """A QueryResponse: matching objects in Id order; empty (``{}``) when nothing matches, as QBO answers."""
    found = [obj for _, obj in sorted(company.entities[query.entity].items(), key=lambda item: _id_order(item[0]))
             if all(str(obj.get(name, "")) == value for name, value in query.conditions)]
    page = found[query.start_position - 1:query.start_position - 1 + query.max_results]
    if not page:
        return {}
    return {query.entity: page, "startPosition": query.start_position, "maxResults": len(page)}


def _id_order(object_id: str) -> tuple[int, str]:
    return (int(object_id), "") if object_id.isdigit() else (0, object_id)


# --- the fake ---------------------------------------------------------------------------------

class FakeQbo(LocalServer):
    """QuickBooks Online on 127.0.0.1; use as a context manager. State is readable while it runs.

    ``realms`` maps realm ids to access tokens that work from the start; ``accounts`` and
    ``customers`` (id -> name) are seeded into every realm given. ``now`` is the clock for
    rate limits and token lifetimes, so a test or a scaled benchmark decides how time passes.
    """

    name = "fake QuickBooks Online"

    def __init__(self, *, realms: Mapping[str, str] | None = None,
                 accounts: Mapping[str, str] = SANDBOX_ACCOUNTS, customers: Mapping[str, str] | None = None,
                 client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 per_minute: int = 500, per_second: int = 10, batch_per_minute: int = 40,
                 now: Callable[[], float] = time.monotonic, xsd_dir: Path = QBO_XSD_DIR, port: int = 0) -> None:
        qbo_schema(xsd_dir)  # fail here, with the path, rather than at the first request
        self.xsd_dir, self.now = xsd_dir, now
        self.client_id, self.client_secret = client_id, client_secret
        self._seed = (dict(realms or {REALM: ACCESS_TOKEN}), dict(accounts), dict(customers or {}))
        self._limits = (per_minute, per_second, batch_per_minute)
        self._lock = threading.RLock()
        self.reset()
        self.realm = next(iter(self.companies))
        super().__init__(create_app(self), port)

    def reset(self) -> None:
        """Back to what the constructor made (a server shared by many tests starts each afresh):
        the seeded realms, tokens, accounts and customers; no objects, faults, records or windows."""
        realms, accounts, customers = self._seed
        with self._lock:
            self.companies: dict[str, Company] = {}
            self.spec_violations: list[SpecViolation] = []
            self.limit_violations: list[LimitViolation] = []
            self.requests: list[tuple[str, str]] = []  # (method, path?query), token requests included
            self.rate = RateWindows(*self._limits)
            self._access: dict[str, Grant] = {}
            self._refresh: dict[str, Grant] = {}
            self._codes: dict[str, str] = {}  # authorisation code -> realm
            self._faults: list[InjectedFault] = []
            for realm, token in realms.items():
                self.add_realm(realm, token)
                for account_id, account_name in accounts.items():
                    self.add_account(account_id, account_name, realm=realm)
                for customer_id, display_name in customers.items():
                    self.add_customer(display_name, customer_id=customer_id, realm=realm)

    # --- addresses and what tests read
    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def api_url(self, realm: str | None = None) -> str:
        """The company's API root, as https://quickbooks.api.intuit.com/v3/company/<realm> is for the real one."""
        return f"{self.url}/v3/company/{realm or self.realm}"

    @property
    def entities(self) -> dict[str, dict[str, dict]]:
        """The first realm's objects: entity -> Id -> object (amounts as Decimal)."""
        return self.companies[self.realm].entities

    @property
    def max_per_minute(self) -> int:
        """The most requests any realm had accepted within one minute."""
        return self.rate.max_per_minute

    @property
    def max_per_second(self) -> int:
        return self.rate.max_per_second

    # --- set-up
    def add_realm(self, realm: str, access_token: str | None = None) -> str:
        """A company, and an access token for it (made up unless given)."""
        with self._lock:
            self.companies.setdefault(realm, Company(realm))
            token = access_token or secrets.token_urlsafe(24)
            self._access[token] = Grant(realm, self.now() + ACCESS_TOKEN_SECONDS)
            return token

    def add_account(self, account_id: str, name: str, *, account_type: str | None = None,
                    realm: str | None = None) -> dict:
        account = {"Id": str(account_id), "Name": name, "FullyQualifiedName": name, "Active": True,
                   "SyncToken": "0", "domain": "QBO", "sparse": False}
        if account_type:
            account["AccountType"] = account_type
        with self._lock:
            return self.companies[realm or self.realm].put("Account", account)

    def add_customer(self, display_name: str, *, customer_id: str | None = None, realm: str | None = None) -> str:
        customer = {"DisplayName": display_name, "Active": True, "Balance": Decimal(0), "SyncToken": "0",
                    "domain": "QBO", "sparse": False}
        if customer_id is not None:
            customer["Id"] = str(customer_id)
        with self._lock:
            return self.companies[realm or self.realm].put("Customer", customer)["Id"]

    def issue_code(self, realm: str | None = None) -> str:
        """An authorisation code, as Intuit's consent page would redirect with (usable once)."""
        realm = realm or self.realm
        if realm not in self.companies:
            raise ValueError(f"realm {realm} is not registered in the fake (add_realm first)")
        with self._lock:
            code = "AB" + secrets.token_urlsafe(30)
            self._codes[code] = realm
            return code

    def expire_access_tokens(self) -> None:
        """Every access token given so far stops working (401) — as an hour passing would."""
        with self._lock:
            self._access.clear()

    def fail_next(self, kind: str, count: int = 1, path_contains: str | None = None, *,
                  marker: str | None = None, delay: float = 2.0) -> None:  # not money: seconds
        """Answer the next ``count`` matching requests with a fault.

        ``429``/``500``/``503``: refuse before anything is stored. ``timeout_after_commit``:
        store, then hold the reply ``delay`` real seconds so the client times out. ``validation``:
        a ValidationFault for an object whose DocNumber/PrivateNote/DisplayName contains
        ``marker`` (any object when None), batch items included. Without ``path_contains`` a
        fault matches API requests (``/v3/``) only; pass ``"/oauth2/"`` to fault the token endpoint.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(InjectedFault(kind, count, path_contains, marker, delay))

    def _take_fault(self, target: str, kinds: tuple[str, ...], obj: dict | None = None) -> InjectedFault | None:
        for fault in self._faults:
            if fault.kind in kinds and fault.matches(target) and _carries_marker(obj, fault.marker):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- OAuth 2.0
    def token_reply(self, authorization: str, form: Mapping[str, str], target: str) -> Reply:
        with self._lock:
            self.requests.append(("POST", target))
            fault = self._take_fault(target, ("429", "500", "503"))
            if fault is not None:
                return _injected_reply(fault.kind)
            if authorization != "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode():
                return _json_reply(401, {"error": "invalid_client"})
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                if not form.get("redirect_uri"):
                    return _json_reply(400, {"error": "invalid_request"})
                realm = self._codes.pop(form.get("code", ""), None)
            elif grant_type == "refresh_token":
                grant = self._refresh.pop(form.get("refresh_token", ""), None)
                realm = grant.realm if grant is not None and grant.expires_at > self.now() else None
            else:
                return _json_reply(400, {"error": "unsupported_grant_type"})
            if realm is None:
                return _json_reply(400, {"error": "invalid_grant"})
            return _json_reply(200, self._new_tokens(realm), {"Cache-Control": "no-store"})

    def _new_tokens(self, realm: str) -> dict:
        access, refresh = secrets.token_urlsafe(32), "RT1-" + secrets.token_urlsafe(24)
        self._access[access] = Grant(realm, self.now() + ACCESS_TOKEN_SECONDS)
        self._refresh[refresh] = Grant(realm, self.now() + REFRESH_TOKEN_SECONDS)
        return {"token_type": "bearer", "access_token": access, "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": refresh, "x_refresh_token_expires_in": REFRESH_TOKEN_SECONDS}

    # --- the API
    def api_reply(self, request: ApiRequest, handler: Callable[[ApiRequest], Reply]) -> Reply:
        """Authentication, rate limits, injected faults and requestid replay, then ``handler``."""
        with self._lock:
            self.requests.append((request.method, request.target))
            refused = self._authenticate(request) or self._throttle(request)
            if refused is not None:
                return refused
            fault = self._take_fault(request.target, ("429", "500", "503", "timeout_after_commit"))
            if fault is not None and fault.kind != "timeout_after_commit":
                return _injected_reply(fault.kind)
            self._check_headers(request)
            reply = self._once_per_request_id(request, handler)
            return replace(reply, delay=fault.delay) if fault is not None else reply

    def _authenticate(self, request: ApiRequest) -> Reply | None:
        header = request.headers.get("authorization", "")
        grant = self._access.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if grant is None or grant.expires_at <= self.now():
            return _unauthorized()
        if grant.realm != request.realm:
            return _forbidden(request.realm)
        return None

    def _throttle(self, request: ApiRequest) -> Reply | None:
        now = self.now()
        broken = self.rate.admit(request.realm, now, request.is_batch)
        if broken is None:
            return None
        self.limit_violations.append(LimitViolation(request.realm, broken, now))
        limit = {"per_minute": f"{self.rate.per_minute} requests a minute",
                 "per_second": f"{self.rate.per_second} requests a second",
                 "batch_per_minute": f"{self.rate.batch_per_minute} batch requests a minute"}[broken]
        return _throttled(1 if broken == "per_second" else 60, f"The request limit ({limit}) was reached.")

    def _check_headers(self, request: ApiRequest) -> None:
        """QBO answers XML unless asked for JSON, and reads a body by its Content-Type."""
        if "application/json" not in request.headers.get("accept", ""):
            self.spec_violations.append(SpecViolation("request", "Accept",
                                                      "QBO answers XML unless the request says Accept: application/json"))
        if request.method == "POST" and request.body:
            expected = "application/text" if request.target.split("?")[0].endswith("/query") else "application/json"
            if not request.headers.get("content-type", "").startswith(expected):
                self.spec_violations.append(SpecViolation("request", "Content-Type",
                                                          f"a {request.target.split('?')[0]} body is {expected}"))

    def _once_per_request_id(self, request: ApiRequest, handler: Callable[[ApiRequest], Reply]) -> Reply:
        request_id = request.query.get("requestid")
        if request_id is None or request.method != "POST":
            return handler(request)
        longest = MAX_BATCH_REQUEST_ID if request.is_batch else MAX_REQUEST_ID
        if len(request_id) > longest:
            return _fault_reply(Refused(QboError(
                "2050", "String length is either shorter or longer than supported by specification",
                f"requestid is {len(request_id)} characters long; at most {longest} are allowed here", "requestid")))
        company = self.companies[request.realm]
        if request_id not in company.replies:
            company.replies[request_id] = handler(request)
        return company.replies[request_id]

    def create(self, request: ApiRequest, entity: str) -> Reply:
        try:
            payload = _json_object(request.body)
            created = self._create_entity(self.companies[request.realm], entity, payload, request.target)
        except Refused as refused:
            return _fault_reply(refused)
        return _json_reply(200, {entity: created, "time": _timestamp()})

    def _create_entity(self, company: Company, entity: str, payload: dict, target: str,
                       check_schema: bool = True) -> dict:
        """Check, apply the business rules, store; raises Refused with the Fault QBO would send."""
        if check_schema:
            self._check_schema(entity, payload)
        if "Id" in payload:
            raise _invalid(f"{entity}.Id: the fake creates objects only; updates are not served", "Id")
        if self._take_fault(target, ("validation",), payload) is not None:
            raise _business(f"injected validation fault for {entity} {_marked_text(payload)!r}")
        computed = RULES[entity](company, payload)
        stamp = _timestamp()
        return company.put(entity, {**payload, **computed, "domain": "QBO", "sparse": False, "SyncToken": "0",
                                    "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}})

    def _check_schema(self, entity: str, payload: dict) -> None:
        violations = check_payload(entity, payload, self.xsd_dir)
        if violations:
            self.spec_violations.extend(violations)
            raise Refused(*(QboError("2010", "Request has invalid or unsupported property",
                                     f"{v.path or entity}: {v.message}", v.path) for v in violations))

    def read(self, request: ApiRequest, entity: str, object_id: str) -> Reply:
        obj = self.companies[request.realm].entities[entity].get(object_id)
        if obj is None:
            return _fault_reply(Refused(QboError("610", "Object Not Found",
                                                 f"Object Not Found : {entity} {object_id} does not exist")))
        return _json_reply(200, {entity: obj, "time": _timestamp()})

    def query(self, request: ApiRequest) -> Reply:
        text = request.body.decode() if request.method == "POST" else request.query.get("query", "")
        try:
            found = run_query(self.companies[request.realm], parse_query(text))
        except Refused as refused:
            return _fault_reply(refused)
        return _json_reply(200, {"QueryResponse": found, "time": _timestamp()})

    def batch(self, request: ApiRequest) -> Reply:
        try:
            payload = _json_object(request.body)
            self._check_schema("IntuitBatchRequest", payload)
            items = _batch_items(payload)
        except Refused as refused:
            return _fault_reply(refused)
        company = self.companies[request.realm]
        answers = [self._batch_item(company, item, request.target) for item in items]
        return _json_reply(200, {"BatchItemResponse": answers, "time": _timestamp()})

    def _batch_item(self, company: Company, item: dict, target: str) -> dict:
        """One item's answer: the object or the QueryResponse, or its own Fault (the others still run)."""
        try:
            if "Query" in item:
                return {"bId": item["bId"], "QueryResponse": run_query(company, parse_query(item["Query"]))}
            entity = next((name for name in CREATABLE.values() if name in item), None)
            if item.get("operation") != "create" or entity is None:
                raise _invalid(f"batch item {item['bId']}: the fake serves operation create of "
                               f"{', '.join(CREATABLE.values())}, or a Query")
            return {"bId": item["bId"], entity: self._create_entity(company, entity, item[entity], target, False)}
        except Refused as refused:
            return {"bId": item["bId"], "Fault": refused.fault()}


def _injected_reply(kind: str) -> Reply:
    if kind == "429":
        return _throttled(60, "injected: The request limit was reached.")
    return _server_error(int(kind))


def _carries_marker(obj: dict | None, marker: str | None) -> bool:
    if obj is None or marker is None:
        return True
    return marker in _marked_text(obj)


def _marked_text(obj: dict) -> str:
    return " ".join(str(obj.get(name, "")) for name in MARKED_FIELDS)


def _json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body, parse_float=Decimal)
    except ValueError as error:
        raise _invalid(f"the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise _invalid(f"the body must be a JSON object, got {type(payload).__name__}")
    return payload


def _batch_items(payload: dict) -> list[dict]:
    """The items of a batch that the XSD accepted: at most 30, each with its own bId."""
    items = payload.get("BatchItemRequest")
    items = items if isinstance(items, list) else [items]
    if len(items) > MAX_BATCH_ITEMS:
        raise _business(f"a batch holds at most {MAX_BATCH_ITEMS} items, this one {len(items)}", "BatchItemRequest")
    ids = [item.get("bId") for item in items]
    if None in ids or len(set(ids)) != len(ids):
        raise _invalid("every BatchItemRequest needs a bId of its own", "BatchItemRequest.bId")
    return items


# --- the app ----------------------------------------------------------------------------------

def _unsupported(request: ApiRequest) -> Reply:
    return _fault_reply(Refused(QboError("500", "Unsupported Operation",
                                         f"{request.method} {request.target} is not served by the fake")))


def _to_response(reply: Reply) -> Response:
    return Response(reply.content, status_code=reply.status, headers=dict(reply.headers),
                    media_type="application/json")


def create_app(fake: FakeQbo) -> Starlette:
    """The HTTP face of ``fake``: each endpoint reads the request and hands it to the fake."""

    async def api_request(request: Request, is_batch: bool = False) -> ApiRequest:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return ApiRequest(request.method, request.path_params["realm"], target, dict(request.query_params),
                          request.headers, await request.body(), is_batch)

    async def answer(reply: Reply) -> Response:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return _to_response(reply)

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        return await answer(fake.token_reply(request.headers.get("authorization", ""), form, request.url.path))

    async def entity(request: Request) -> Response:
        name = (CREATABLE if request.method == "POST" else READABLE).get(request.path_params["entity"])
        if name is None:
            handler = _unsupported
        elif request.method == "POST":
            handler = functools.partial(fake.create, entity=name)
        else:
            handler = functools.partial(fake.read, entity=name, object_id=request.path_params["id"])
        return await answer(fake.api_reply(await api_request(request), handler))

    async def query(request: Request) -> Response:
        return await answer(fake.api_reply(await api_request(request), fake.query))

    async def batch(request: Request) -> Response:
        return await answer(fake.api_reply(await api_request(request, is_batch=True), fake.batch))

    return Starlette(routes=[
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route("/v3/company/{realm}/query", query, methods=["GET", "POST"]),
        Route("/v3/company/{realm}/batch", batch, methods=["POST"]),
        Route("/v3/company/{realm}/{entity}", entity, methods=["POST"]),
        Route("/v3/company/{realm}/{entity}/{id}", entity, methods=["GET"]),
    ])
