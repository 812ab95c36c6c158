"""dlt source for PayPal's Transaction Search API (reporting): every balance-affecting transaction of
the account into ``raw_<source>.transactions``.

What PayPal allows, and what we do about it (Transaction Search 1.9, ``../shared/specs/paypal``):

* ``start_date``/``end_date`` are required and at most 31 days apart: longer periods are read in
  consecutive windows of at most 31 days.
* Transactions appear up to three hours after they happen: an incremental run reads up to now
  minus three hours, never later, so the next run's window (which starts earlier: the close
  subtracts the source's lookback) sees whatever was still on its way.
* Only the last three years can be searched: an older window is refused with a clear error
  instead of PayPal's "Data for the given start date is not available".
* ``page_size`` at most 500, ``page`` from 1, the reply says ``total_pages``.

Authentication is OAuth 2 client credentials: the client id and secret (from the environment
variables the settings name) buy a bearer token that lives ``expires_in`` seconds; a token that
PayPal refuses earlier (401) is replaced once and the call repeated.

PayPal filters on the transaction's date, so a lookback re-reads transactions that did not change;
versions already stored (same transaction id, same record hash) are skipped, so an unchanged
rerun loads nothing. Raw rows keep every version (primary key id + ``lf_record_hash``), as the
demo PMS source does. Money is a decimal string per currency: more decimals than the currency
has (JPY none, most two) is refused, not rounded; refused fields are null and described in
``lf_invalid`` (JSON) for staging to turn into rejects.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.currencies import ISO_4217
from schemas.money import MoneyError, parse_money
from sources.records import ExtractReport, format_instant, parse_instant, record_hash, rows_to_arrow

log = logging.getLogger("ledgerflow.sources.paypal")

SEARCH_PATH = "/v1/reporting/transactions"
TOKEN_PATH = "/v1/oauth2/token"
MAX_WINDOW = timedelta(days=31)
DATA_LAG = timedelta(hours=3)
HISTORY = timedelta(days=3 * 365)
TOKEN_MARGIN_SECONDS = 60  # not money: renew a token this long before PayPal would let it expire
# PayPal's currency codes page: HUF, JPY and TWD take no decimals, the others two. (PayPal does not
# settle in three-decimal currencies; our money has two decimals, so such an amount would be refused.)
ZERO_DECIMAL = frozenset({"HUF", "JPY", "TWD"})

_TEXT = ("id", "event_code", "status", "reference_id", "reference_id_type", "invoice_id", "custom_field",
         "bank_reference_id", "currency", "fee_currency")
_MONEY = {"transaction_amount": ("amount", "currency"), "fee_amount": ("fee_amount", "fee_currency")}
_TIMES = {"transaction_initiation_date": "initiated_at", "transaction_updated_date": "updated_at"}
_INFO_TEXT = {"transaction_id": "id", "transaction_event_code": "event_code", "transaction_status": "status",
              "paypal_reference_id": "reference_id", "paypal_reference_id_type": "reference_id_type",
              "invoice_id": "invoice_id", "custom_field": "custom_field", "bank_reference_id": "bank_reference_id"}
_OURS = ("lf_invalid", "lf_extra", "lf_record_hash")


class PaypalAuthError(RuntimeError):
    """PayPal refused the client credentials (or every token they bought)."""


def parse_amount(money: object) -> tuple[Decimal, str]:
    """PayPal's ``{currency_code, value}`` -> (exact amount, currency); more decimals than the
    currency has, or anything that is not a decimal string, is refused."""
    if not isinstance(money, dict):
        raise MoneyError(f"{money!r} is not a money object {{currency_code, value}}")
    currency, value = money.get("currency_code"), money.get("value")
    if currency not in ISO_4217:
        raise MoneyError(f"currency_code {currency!r} is not an ISO 4217 currency code")
    if not isinstance(value, str):
        raise MoneyError(f"value {value!r} is not a decimal string")
    allowed = 0 if currency in ZERO_DECIMAL else 2
    decimals = len(value.partition(".")[2])
    if decimals > allowed:
        raise MoneyError(f"amount {value!r} has {decimals} decimals; {currency} has {allowed}")
    return parse_money(value), currency


def arrow_schema():
    """Exact column types of the raw table: money as decimal128, times as UTC microseconds."""
    import pyarrow as pa

    fields = [pa.field(name, pa.string()) for name in _TEXT]
    fields += [pa.field("amount", pa.decimal128(18, 2)), pa.field("fee_amount", pa.decimal128(18, 2))]
    fields += [pa.field(name, pa.timestamp("us", tz="UTC")) for name in _TIMES.values()]
    fields += [pa.field(name, pa.string()) for name in _OURS]
    return pa.schema(fields)


def raw_row(detail: dict) -> dict:
    """One ``transaction_detail`` as a raw row: typed fields out of ``transaction_info``, the rest of
    the record in ``lf_extra``, and what could not be read exactly in ``lf_invalid``."""
    digest = record_hash(detail)
    info = detail.get("transaction_info") if isinstance(detail.get("transaction_info"), dict) else {}
    row: dict = {}
    problems: dict[str, dict[str, str]] = {}
    for theirs, ours in _INFO_TEXT.items():
        value = info.get(theirs)
        if value is not None and not isinstance(value, str):
            problems[f"transaction_info.{theirs}"] = {"value": repr(value), "reason": "is not text"}
            value = None
        row[ours] = value
    if not row["id"]:
        problems["transaction_info.transaction_id"] = {"value": repr(info.get("transaction_id")),
                                                       "reason": "is missing"}
        row["id"] = f"(no id {digest[:12]})"
    for theirs, (amount, currency) in _MONEY.items():
        row[amount] = row[currency] = None
        if info.get(theirs) is not None:
            try:
                row[amount], row[currency] = parse_amount(info[theirs])
            except MoneyError as exc:
                problems[f"transaction_info.{theirs}"] = {"value": json.dumps(info[theirs], default=str),
                                                          "reason": str(exc)}
    for theirs, ours in _TIMES.items():
        row[ours] = None
        if info.get(theirs) is not None:
            try:
                row[ours] = parse_instant(info[theirs])
            except ValueError as exc:
                problems[f"transaction_info.{theirs}"] = {"value": str(info[theirs]), "reason": str(exc)}
    rest_of_info = {k: v for k, v in info.items() if k not in {*_INFO_TEXT, *_MONEY, *_TIMES}}
    extra = {k: v for k, v in detail.items() if k != "transaction_info"} | (
        {"transaction_info": rest_of_info} if rest_of_info else {})
    row["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
    row["lf_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None
    row["lf_record_hash"] = digest
    return row


def windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most 31 days (PayPal's limit)."""
    cuts = []
    while start < end:
        cuts.append((start, min(start + MAX_WINDOW, end)))
        start = cuts[-1][1]
    return cuts


def search_period(updated_since: datetime | None, posted_window: tuple[datetime, datetime] | None,
                  now: datetime) -> tuple[datetime, datetime]:
    """What to read: from ``updated_since`` (or the backfill window) to at most now minus PayPal's lag."""
    start, end = posted_window if posted_window else (updated_since, now)
    start, end = start.astimezone(UTC), min(end.astimezone(UTC), now - DATA_LAG)
    if start < now - HISTORY:
        raise ValueError(f"PayPal searches only the last three years: {format_instant(start)} is before "
                         f"{format_instant(now - HISTORY)}")
    return start, end


@dataclass
class PaypalClient:
    """Bearer tokens bought with the client credentials, and the transaction search with them."""

    base_url: str
    client_id: str
    client_secret: str
    session: object  # requests.Session: retries 429/5xx, honours Retry-After, writes the HTTP audit log
    variables: tuple[str, str]  # names of the environment variables the credentials came from (for messages)
    timeout: float = 30.0  # not money: seconds
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0  # not money: time.monotonic() when the token runs out

    def token(self) -> str:
        if self._token is None or time.monotonic() >= self._expires:
            self._token, self._expires = self._buy_token()
        return self._token

    def _buy_token(self) -> tuple[str, float]:
        from requests import HTTPError

        try:
            reply = self.session.post(self.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"},
                                      auth=(self.client_id, self.client_secret),
                                      headers={"Accept": "application/json"}, timeout=self.timeout)
        except HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (400, 401, 403):
                raise PaypalAuthError(
                    f"PayPal refused the client credentials in {self.variables[0]} and {self.variables[1]} "
                    f"({status} {_error_text(exc.response)})") from None
            raise
        body = reply.json()
        lifetime = float(body.get("expires_in", 0)) - TOKEN_MARGIN_SECONDS  # not money: seconds
        return body["access_token"], time.monotonic() + max(lifetime, 0.0)

    def search(self, params: dict) -> dict:
        """One page of the transaction search; a refused token (expired early, or revoked) is replaced
        once and the call repeated."""
        try:
            return self._search_once(params)
        except _TokenRefused:
            log.info("PayPal refused the access token (expired?); buying a new one")
            self._token = None
        try:
            return self._search_once(params)
        except _TokenRefused as exc:
            raise PaypalAuthError(f"PayPal refused a fresh token too: {exc}") from None

    def _search_once(self, params: dict) -> dict:
        from requests import HTTPError

        try:
            return self.session.get(self.base_url + SEARCH_PATH, params=params, timeout=self.timeout,
                                    headers={"Authorization": f"Bearer {self.token()}",
                                             "Accept": "application/json"}).json()
        except HTTPError as exc:
            response = exc.response
            if response is not None and response.status_code == 401:
                raise _TokenRefused(_error_text(response)) from None
            answer = f"{response.status_code} {_error_text(response)}" if response is not None else str(exc)
            raise RuntimeError(f"PayPal transaction search {params} answered {answer}") from exc


class _TokenRefused(Exception):
    """A 401 from the search: the bearer token is no longer good."""


def _error_text(response) -> str:
    """PayPal's own words: the OAuth ``error_description``, or the message with each detail's field and issue."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:300]
    details = "; ".join(f"{d.get('field', '')}={d.get('value', '')!r}: {d.get('issue', '')} {d.get('description', '')}"
                        .strip() for d in body.get("details") or [] if isinstance(d, dict))
    text = body.get("error_description") or body.get("message") or body.get("name") or str(body)
    return f"{text} ({details})"[:500] if details else str(text)[:300]


def transactions_pages(client: PaypalClient, period: tuple[datetime, datetime], *, page_size: int,
                       stored: set[tuple[str, str]], report: ExtractReport):
    """Pages of raw rows: window by window, page by page; versions already stored are left out."""
    for start, end in windows(*period):
        page, pages = 1, 1
        while page <= pages:
            reply = client.search({"start_date": _rfc3339(start), "end_date": _rfc3339(end), "fields": "all",
                                   "balance_affecting_records_only": "Y", "page_size": page_size, "page": page})
            pages = int(reply.get("total_pages") or 0)
            rows = []
            for detail in reply.get("transaction_details") or []:
                row = raw_row(detail)
                # PayPal's end_date may be inclusive: a transaction on a window's edge belongs to the next one.
                if row["initiated_at"] is not None and not start <= row["initiated_at"] < end:
                    continue
                report.delivered[("transactions", row["id"], row["lf_record_hash"])] += 1
                if (row["id"], row["lf_record_hash"]) not in stored:
                    rows.append(row)
            if rows:
                yield rows
            page += 1


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paypal_source(client: PaypalClient, period: tuple[datetime, datetime], *, page_size: int,
                  stored: set[tuple[str, str]], report: ExtractReport):
    """The dlt source: one resource, ``transactions``, as typed Arrow pages."""
    import dlt

    schema = arrow_schema()

    @dlt.resource(name="transactions", write_disposition="merge", primary_key=["id", "lf_record_hash"])
    def transactions():
        for rows in transactions_pages(client, period, page_size=page_size, stored=stored, report=report):
            yield rows_to_arrow(rows, schema)

    return dlt.source(name="paypal")(lambda: [transactions])()


def stored_versions(duckdb_path, source_name: str, since: datetime) -> set[tuple[str, str]]:
    """(id, record hash) of the raw versions already stored for transactions from ``since`` on."""
    from sources.extract import dataset_name
    from warehouse.db import opened, run, table_exists

    if not duckdb_path.exists():
        return set()
    schema = dataset_name(source_name)
    with opened(duckdb_path) as con:
        if not table_exists(con, schema, "transactions"):
            return set()
        rows = run(con, f"SELECT id, lf_record_hash FROM {schema}.transactions "
                        "WHERE initiated_at >= ? OR initiated_at IS NULL", [since])
    return {(record_id, digest) for record_id, digest in rows}


def extraction(request):
    """``sources.extract`` entry point: credentials checked (a first token bought) before dlt starts."""
    from sources.extract import Extraction

    settings = request.settings
    url = (request.base_url or settings.resolved_base_url() or "").rstrip("/")
    if not url:
        raise ValueError("set base_url")
    variables = (settings.client_id_env, settings.client_secret_env)
    missing = [name for name in variables if not os.environ.get(name)]
    if missing:
        raise ValueError(f"PayPal client credentials: set the environment variable(s) {', '.join(missing)}")
    period = search_period(request.updated_since, request.posted_window, datetime.now(UTC))
    client = PaypalClient(url, os.environ[variables[0]], os.environ[variables[1]], request.session, variables,
                          timeout=settings.timeout_seconds)
    try:
        client.token()
    except PaypalAuthError as exc:
        raise ValueError(str(exc)) from None
    stored = stored_versions(request.tenant.duckdb_path(), request.name, period[0])
    source = paypal_source(client, period, page_size=settings.page_size, stored=stored, report=request.report)
    return Extraction(source, url)
