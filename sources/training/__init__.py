"""dlt source for a training-management system: invoices, payments and refunds into ``raw_<source>``.

The API (shape in ``sources/training/fake.py``) lists each resource by ``updated_at``:

* incremental (daily close, reconcile refresh): everything whose current version changed since
  ``updated_since`` (the close's cursor, looked back ``lookback_days``); no dlt cursor state,
  so a rerun with the same ``updated_since`` asks for the same records and adds nothing;
* backfill: the window is a window on ``updated_at`` too (``[updated_since, updated_before)``),
  since the system cannot be asked what was *issued* in a window. A record changed after the
  window is not in it; the incremental runs since then have brought it.

Raw tables keep every version we saw (primary key: id + hash of the record as delivered), so
re-reading a record adds nothing and a changed one adds a row. Before dlt sees a record it is
checked: money exact (decimal strings, at most two decimals), times with an offset, dates ISO,
the customer object flattened into ``customer_*`` columns. A bad field is set to null and
described in ``lf_invalid``; staging (``warehouse.stage_training``) turns it into a reject.

A 401 stops the extraction with an error naming the environment variable that holds the token;
nothing is loaded then. 429s and 5xx are retried by the session (honouring ``Retry-After``).
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime

from schemas.money import MoneyError, parse_money
from sources.extract import ExtractError
from sources.records import ExtractReport, format_instant, parse_instant, record_hash, rows_to_arrow

_TEXT = {
    "invoices": ("id", "number", "booking_id", "course", "customer_id", "customer_name", "customer_email",
                 "customer_iban", "po_number", "currency", "status"),
    "payments": ("id", "invoice_id", "currency", "method", "reference", "source"),
    "refunds": ("id", "invoice_id", "currency", "reason"),
}
_MONEY = {"invoices": ("total",), "payments": ("amount",), "refunds": ("amount",)}
_DATES = {"invoices": ("issue_date", "due_date"), "payments": (), "refunds": ()}
_TIMES = {"invoices": ("updated_at",), "payments": ("paid_at", "updated_at"), "refunds": ("refunded_at", "updated_at")}
_INTEGERS = {"invoices": ("version",), "payments": (), "refunds": ()}
_OURS = ("lf_invalid", "lf_extra", "lf_record_hash")
TABLES = tuple(_TEXT)


class TrainingAuthError(ExtractError):
    """The system refused the token: wrong, expired or revoked."""


def arrow_schema(table: str):
    """Exact column types of a raw table: money as decimal128(18, 2), times as UTC microseconds."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(name, pa.string()) for name in _TEXT[table]]
        + [pa.field(name, pa.decimal128(18, 2)) for name in _MONEY[table]]
        + [pa.field(name, pa.date32()) for name in _DATES[table]]
        + [pa.field(name, pa.timestamp("us", tz="UTC")) for name in _TIMES[table]]
        + [pa.field(name, pa.int64()) for name in _INTEGERS[table]]
        + [pa.field(name, pa.string()) for name in _OURS])


def _flatten(record: dict, problems: dict) -> dict:
    """``customer {id, name, email, iban}`` -> ``customer_*`` columns."""
    out = {k: v for k, v in record.items() if k != "customer"}
    customer = record.get("customer")
    if isinstance(customer, dict):
        out.update({f"customer_{k}": v for k, v in customer.items()})
    elif customer is not None:
        problems["customer"] = {"value": repr(customer)[:200], "reason": "is not an object"}
    return out


def check_record(table: str, record: dict, report: ExtractReport) -> dict:
    """One record as delivered -> a raw row with exact types; bad fields null and described."""
    digest = record_hash(record)
    problems: dict[str, dict[str, str]] = {}
    out = _flatten(record, problems) if table == "invoices" else dict(record)
    record_id = record.get("id")
    if not isinstance(record_id, (str, int)) or isinstance(record_id, bool) or str(record_id).strip() == "":
        problems["id"] = {"value": repr(record_id), "reason": "is missing"}
        out["id"] = f"(no id {digest[:12]})"
    else:
        out["id"] = str(record_id)
    for name in _MONEY[table]:
        if out.get(name) is not None:
            try:
                out[name] = parse_money(out[name])
            except MoneyError as exc:
                problems[name] = {"value": str(out[name]), "reason": str(exc)}
                out[name] = None
    for name in _DATES[table]:
        if out.get(name) is not None:
            try:
                out[name] = date.fromisoformat(out[name])
            except (TypeError, ValueError):
                problems[name] = {"value": str(out[name]), "reason": "is not an ISO date YYYY-MM-DD"}
                out[name] = None
    for name in _TIMES[table]:
        if out.get(name) is not None:
            try:
                out[name] = parse_instant(out[name])
            except ValueError as exc:
                problems[name] = {"value": str(out[name]), "reason": str(exc)}
                out[name] = None
    for name in _INTEGERS[table]:
        value = out.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            problems[name] = {"value": repr(value), "reason": "is not a whole number"}
            out[name] = None
    for name in _TEXT[table]:
        value = out.get(name)
        if value is not None and not isinstance(value, str):
            if isinstance(value, int) and not isinstance(value, bool):
                out[name] = str(value)
            else:
                problems[name] = {"value": repr(value)[:200], "reason": "is not text"}
                out[name] = None
    known = {*_TEXT[table], *_MONEY[table], *_DATES[table], *_TIMES[table], *_INTEGERS[table]}
    extra = {k: v for k, v in out.items() if k not in known}
    out["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
    out["lf_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None
    out["lf_record_hash"] = digest
    report.delivered[(table, out["id"], digest)] += 1
    return out


def _pages(session, url: str, params: dict, token: str, token_env: str, timeout: float):
    """Every page of one listing, following ``next_page_token``."""
    from requests import HTTPError

    params = dict(params)
    while True:
        try:
            response = session.get(url, params=params, headers={"Authorization": f"Bearer {token}",
                                                                 "Accept": "application/json"}, timeout=timeout)
            response.raise_for_status()
        except HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 401:
                raise TrainingAuthError(
                    f"{url}: HTTP 401: the token in the environment variable {token_env} is wrong, expired or "
                    f"revoked; put a valid one there (nothing was loaded)") from None
            raise
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ExtractError(f"{url}: the answer has no 'data' list: {str(body)[:200]}")
        yield body["data"]
        if not body.get("next_page_token"):
            return
        params["page_token"] = body["next_page_token"]


def training_source(base_url: str, token: str, *, report: ExtractReport, page_size: int = 100,
                    updated_since: datetime | None = None, window: tuple[datetime, datetime] | None = None,
                    session=None, token_env: str = "TRAINING_API_TOKEN", timeout: float = 30.0):  # not money
    """The dlt source. Give either ``updated_since`` (incremental) or ``window`` (backfill on updated_at)."""
    import dlt

    if (updated_since is None) == (window is None):
        raise ValueError("give exactly one of updated_since (incremental) and window (backfill)")
    if session is None:
        import requests

        session = requests.Session()
    params: dict = {"limit": page_size}
    if window:
        params.update(updated_since=format_instant(window[0]), updated_before=format_instant(window[1]))
    else:
        params["updated_since"] = format_instant(updated_since)

    def resource(table: str):
        schema = arrow_schema(table)

        @dlt.resource(name=table, write_disposition="merge", primary_key=["id", "lf_record_hash"],
                      max_table_nesting=0)
        def rows():
            url = f"{base_url.rstrip('/')}/api/v1/{table}"
            for page in _pages(session, url, params, token, token_env, timeout):
                checked = [check_record(table, record if isinstance(record, dict) else {"id": None, "body": record},
                                        report) for record in page]
                yield rows_to_arrow(checked, schema)

        return rows

    return dlt.source(name="training")(lambda: [resource(table) for table in TABLES])()


def token_of(settings) -> str:
    token = os.environ.get(settings.token_env)
    if not token:
        raise ValueError(f"the environment variable {settings.token_env} is not set; it must hold the training "
                         "system's API token")
    return token


def extraction(request):
    """``sources.extract`` entry point."""
    from sources.extract import Extraction

    settings = request.settings
    url = request.base_url or settings.resolved_base_url()
    if url is None:
        raise ValueError(f"set base_url (or LEDGERFLOW_{settings.type.upper()}_BASE_URL)")
    source = training_source(url, token_of(settings), report=request.report, page_size=settings.page_size,
                             updated_since=request.updated_since, window=request.posted_window,
                             session=request.session, token_env=settings.token_env,
                             timeout=settings.timeout_seconds)
    return Extraction(source, url)
