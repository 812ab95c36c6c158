"""dlt source for Stripe: balance transactions, charges, refunds, disputes, payouts, and the balance
transactions each automatic payout settles, into ``raw_<source>`` of the tenant's DuckDB.

Stripe lists are read page by page (``limit``, ``starting_after`` the last id, while ``has_more``),
newest first, so objects created while we read cannot shift a page. What is read:

* daily (``updated_since``): everything created since then (the close already subtracts the
  source's ``lookback_days``), so a charge refunded or a dispute decided within the lookback is
  read again. Payouts are chosen by ``arrival_date`` instead, ``PAYOUT_SETTLING`` further back:
  Stripe says a payout may turn from ``paid`` to ``failed`` up to five business days after it
  arrived, and those are the changes reconciliation must see. Older changes of other objects
  (a dispute decided weeks later) come with a backfill of the period;
* backfill (``posted_window`` [start, end)): everything created in the window, and the payouts
  arriving in it (what the bank statements of the window show).

Raw tables keep every version of an object (primary key: id + a hash of the object as
delivered), so a re-read of an unchanged object adds nothing, a payout gone from ``pending`` to
``paid`` adds its new version, and overlapping windows never duplicate. Amounts stay what Stripe
sends, integers in the currency's minor units; staging (``transforms.stage_stripe``) turns them
into exact decimals by the currency's exponent. ``RecordChecker`` refuses what is not what the
API documents (an amount that is not an integer, a time that is not a Unix time, no id): the
field is set to null and described in ``lf_invalid``, the whole object is kept in ``lf_extra``,
and staging quarantines the record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sources.records import ExtractReport, record_hash, rows_to_arrow

API_VERSION = "2023-08-16"  # the version of specs/stripe/spec3.json: object shapes depend on it
PAYOUT_SETTLING = timedelta(days=7)  # paid -> failed within 5 business days of arrival (Stripe's payout docs)

_BALANCE = {"text": ("id", "currency", "status", "type", "reporting_category", "source", "description"),
            "minor": ("amount", "fee", "net"), "times": ("created", "available_on"), "flags": ()}
COLUMNS = {
    "balance_transactions": _BALANCE,
    "charges": {"text": ("id", "currency", "status", "balance_transaction", "payment_intent", "customer",
                         "description", "failure_code"),
                "minor": ("amount", "amount_captured", "amount_refunded"), "times": ("created",),
                "flags": ("paid", "captured", "refunded", "disputed")},
    "refunds": {"text": ("id", "currency", "status", "charge", "payment_intent", "balance_transaction", "reason"),
                "minor": ("amount",), "times": ("created",), "flags": ()},
    "disputes": {"text": ("id", "currency", "status", "charge", "payment_intent", "reason"),
                 "minor": ("amount",), "times": ("created",), "flags": ()},
    "payouts": {"text": ("id", "currency", "status", "balance_transaction", "failure_code", "method", "type",
                         "destination", "description"),
                "minor": ("amount",), "times": ("created", "arrival_date"), "flags": ("automatic",)},
    "payout_transactions": {**_BALANCE, "text": ("payout", *_BALANCE["text"])},
}
LISTS = ("balance_transactions", "charges", "refunds", "disputes", "payouts")
_OURS = ("lf_invalid", "lf_extra", "lf_record_hash")


class StripeError(RuntimeError):
    """Stripe refused a request; the message says which and why (Stripe's own words)."""


def arrow_schema(table: str):
    """Exact column types of a raw table: amounts as Stripe's int64 minor units, times as UTC."""
    import pyarrow as pa

    spec = COLUMNS[table]
    return pa.schema([pa.field(n, pa.string()) for n in spec["text"]]
                     + [pa.field(n, pa.int64()) for n in spec["minor"]]
                     + [pa.field(n, pa.timestamp("us", tz="UTC")) for n in spec["times"]]
                     + [pa.field(n, pa.bool_()) for n in spec["flags"]]
                     + [pa.field(n, pa.string()) for n in _OURS])


class RecordChecker:
    """One Stripe object -> one raw row, refusing (not coercing) what the API does not promise."""

    def __init__(self, table: str, report: ExtractReport) -> None:
        self.table = table
        self.spec = COLUMNS[table]
        self.report = report

    def __call__(self, obj: dict) -> dict:
        digest = record_hash(obj)
        problems: dict[str, dict[str, str]] = {}
        row: dict = {}

        def refuse(name: str, reason: str) -> None:
            problems[name] = {"value": repr(obj.get(name)), "reason": reason}
            row[name] = None

        for name in self.spec["text"]:
            value = obj.get(name)
            row[name] = value
            if value is not None and not isinstance(value, str):
                refuse(name, "is not text")
        if not isinstance(obj.get("id"), str) or not obj["id"].strip():
            refuse("id", "is missing")
            row["id"] = f"(no id {digest[:12]})"
        for name in self.spec["minor"]:
            value = obj.get(name)
            row[name] = value
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                refuse(name, "is not an integer amount in the currency's minor units")
        for name in self.spec["times"]:
            value = obj.get(name)
            if value is None:
                row[name] = None
            elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 253402300800:
                row[name] = datetime.fromtimestamp(value, UTC)
            else:
                refuse(name, "is not a Unix time in seconds")
        for name in self.spec["flags"]:
            value = obj.get(name)
            row[name] = value
            if value is not None and not isinstance(value, bool):
                refuse(name, "is not true or false")
        row["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
        row["lf_extra"] = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
        row["lf_record_hash"] = digest
        self.report.delivered[(self.table, row["id"], digest)] += 1
        return row


class StripeClient:
    """Stripe's list endpoints through the run's session (retries on 429/5xx, the HTTP audit log)."""

    def __init__(self, session, base_url: str, api_key: str, *, key_env: str, account: str | None,
                 page_size: int, timeout: float) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.key_env = key_env
        self.page_size = page_size
        self.timeout = timeout  # not money: seconds
        self.headers = {"Authorization": f"Bearer {api_key}", "Stripe-Version": API_VERSION}
        if account:
            self.headers["Stripe-Account"] = account

    def pages(self, listing: str, params: dict[str, object]) -> Iterator[list[dict]]:
        """Every page of a list, following ``starting_after`` while Stripe says ``has_more``."""
        params = {**params, "limit": self.page_size}
        while True:
            page = self._get(f"/v1/{listing}", params)
            data = page.get("data")
            if not isinstance(data, list):
                raise StripeError(f"GET /v1/{listing}: the answer is not a Stripe list (no 'data' array)")
            if data:
                yield data
            if not page.get("has_more") or not data:
                return
            last = data[-1].get("id") if isinstance(data[-1], dict) else None
            if not isinstance(last, str):
                raise StripeError(f"GET /v1/{listing}: the last object of a page has no id to continue after")
            params = {**params, "starting_after": last}

    def _get(self, path: str, params: dict[str, object]) -> dict:
        from requests import HTTPError

        try:
            response = self.session.get(self.base_url + path, params=params, headers=self.headers,
                                        timeout=self.timeout)
        except HTTPError as exc:
            raise self._refused(path, exc.response) from None
        if response.status_code >= 400:  # a session that does not raise by itself
            raise self._refused(path, response)
        return response.json()

    def _refused(self, path: str, response) -> StripeError:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        if response.status_code == 401:
            return StripeError(f"Stripe refused the API key in environment variable {self.key_env} (HTTP 401: "
                               f"{message}); it has expired or been revoked: put a valid key in {self.key_env}")
        return StripeError(f"Stripe answered HTTP {response.status_code} to GET {path}: {message}")


def _unix(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


def list_filters(listing: str, *, updated_since: datetime | None,
                 posted_window: tuple[datetime, datetime] | None) -> dict[str, int]:
    """The range filter of one list for a daily run or a backfill window (see the module docstring)."""
    if (updated_since is None) == (posted_window is None):
        raise ValueError("give exactly one of updated_since (incremental) and posted_window (backfill)")
    field = "arrival_date" if listing == "payouts" else "created"
    if posted_window is not None:
        return {f"{field}[gte]": _unix(posted_window[0]), f"{field}[lt]": _unix(posted_window[1])}
    assert updated_since is not None
    since = updated_since - PAYOUT_SETTLING if listing == "payouts" else updated_since
    return {f"{field}[gte]": _unix(since)}


def stripe_source(client: StripeClient, *, report: ExtractReport, updated_since: datetime | None = None,
                  posted_window: tuple[datetime, datetime] | None = None):
    """The dlt source: one resource per list, plus ``payout_transactions`` fed by the payouts read."""
    import dlt

    def as_arrow(table: str, objects: list[dict], checker: RecordChecker):
        schema = arrow_schema(table)
        rows = [checker(o if isinstance(o, dict) else {"id": None, "value": o}) for o in objects]
        return rows_to_arrow(rows, schema)

    def listing_resource(table: str):
        params = list_filters(table, updated_since=updated_since, posted_window=posted_window)
        checker = RecordChecker(table, report)

        @dlt.resource(name=table, write_disposition="merge", primary_key=["id", "lf_record_hash"],
                      max_table_nesting=0)
        def objects():
            for page in client.pages(table, params):
                yield as_arrow(table, page, checker)

        return objects

    payouts = listing_resource("payouts")
    checker = RecordChecker("payout_transactions", report)

    @dlt.transformer(name="payout_transactions", write_disposition="merge", primary_key=["id", "lf_record_hash"],
                     max_table_nesting=0)
    def payout_transactions(page):
        """Stripe filters balance transactions by payout only for automatic payouts."""
        for payout_id, automatic in zip(page.column("id").to_pylist(), page.column("automatic").to_pylist(),
                                        strict=True):
            if not automatic or payout_id.startswith("(no id"):
                continue
            for transactions in client.pages("balance_transactions", {"payout": payout_id}):
                yield as_arrow("payout_transactions", [{**t, "payout": payout_id} if isinstance(t, dict) else t
                                                       for t in transactions], checker)

    resources = [listing_resource(t) for t in LISTS if t != "payouts"] + [payouts, payouts | payout_transactions]
    return dlt.source(name="stripe")(lambda: resources)()


def extraction(request):
    """``sources.extract`` entry point: the tenant's Stripe account, with its key from the environment."""
    from sources.extract import Extraction

    settings = request.settings
    url = request.base_url or settings.resolved_base_url()
    api_key = os.environ.get(settings.api_key_env, "").strip()
    if not api_key:
        raise ValueError(f"environment variable {settings.api_key_env} (the Stripe API key) is not set")
    client = StripeClient(request.session, url, api_key, key_env=settings.api_key_env, account=settings.account,
                          page_size=settings.page_size, timeout=settings.timeout_seconds)
    source = stripe_source(client, report=request.report, updated_since=request.updated_since,
                           posted_window=request.posted_window)
    return Extraction(source, url)
