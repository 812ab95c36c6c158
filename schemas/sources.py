"""Settings of the API sources in a tenant file (``[sources.NAME]`` with ``type = …``).

Each class is one source type; ``role`` says what the close does with what it brings:

* ``sales``: charges and payments, staged into ``sales_line``/``payment`` and journalled;
* ``processor``: a payment processor's balance (charges, fees, refunds, disputes, payouts): its
  payouts become expected payouts (``open_item`` kind ``payout``) for reconciliation;
* ``items``: invoices, payments and refunds of a billing system, as ``open_item`` rows;
* ``journal``: accounting entries another system exports, taken into the journals as they are.

Secrets are never here, only the names of the environment variables that hold them. Every
``base_url`` is overridable by ``LEDGERFLOW_<TYPE>_BASE_URL`` (tests and local runs).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSource(_Model):
    """What every HTTP source has: where it is, how big a page, how long to wait, how far to look back."""

    default_base_url: ClassVar[str | None] = None
    role: ClassVar[str]
    type: str
    base_url: str | None = None  # default: the system's production API (see default_base_url)
    page_size: int = Field(default=100, ge=1, le=10_000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)  # not money
    retries: int = Field(default=5, ge=0, le=20)  # 429, 5xx and timeouts, each after a growing wait
    backoff_seconds: float = Field(default=0.5, gt=0, le=300)  # not money: the first wait (Retry-After wins)
    lookback_days: int = Field(default=3, ge=0, le=366)  # incremental runs re-read this far back

    def resolved_base_url(self) -> str | None:
        """``LEDGERFLOW_<TYPE>_BASE_URL``, else the tenant file's ``base_url``, else the production API."""
        return os.environ.get(f"LEDGERFLOW_{self.type.upper()}_BASE_URL") or self.base_url or self.default_base_url


# --------------------------------------------------------------------------- stripe

class StripeSource(ApiSource):
    """Stripe: balance transactions, charges, refunds, disputes and payouts (``sources/stripe``)."""

    default_base_url: ClassVar[str | None] = "https://api.stripe.com"
    role: ClassVar[str] = "processor"
    type: Literal["stripe"]
    api_key_env: str = "STRIPE_API_KEY"  # variable holding the secret (or restricted) key
    account: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]+$")  # a connected account (``Stripe-Account``)
    page_size: int = Field(default=100, ge=1, le=100)
    payout_bank_account: str | None = None  # IBAN the payouts arrive on (open_item.bank_account)


# --------------------------------------------------------------------------- paypal

class PaypalSource(ApiSource):
    """PayPal: the transaction search (reporting) API (``sources/paypal``)."""

    default_base_url: ClassVar[str | None] = "https://api-m.paypal.com"
    role: ClassVar[str] = "processor"
    type: Literal["paypal"]
    client_id_env: str = "PAYPAL_CLIENT_ID"
    client_secret_env: str = "PAYPAL_CLIENT_SECRET"
    page_size: int = Field(default=500, ge=1, le=500)
    payout_bank_account: str | None = None  # IBAN withdrawals arrive on (open_item.bank_account)


# --------------------------------------------------------------------------- training

class TrainingSource(ApiSource):
    """A training-management system: course bookings' invoices, payments and refunds, pulled and
    answered (payment status, purchase-order number, due date) (``sources/training``)."""

    role: ClassVar[str] = "items"
    type: Literal["training"]
    token_env: str = "TRAINING_API_TOKEN"
    webhook_secret_env: str = "TRAINING_WEBHOOK_SECRET"
    page_size: int = Field(default=100, ge=1, le=500)
    bank_account: str | None = None  # our IBAN customers pay the invoices to (open_item.bank_account)
    push_payments: bool = True  # tell the system which invoices our bank matches settled
    payment_method: str = Field(default="bank_transfer", min_length=1)  # how pushed payments are labelled


# --------------------------------------------------------------------------- rest_pms

# The raw columns staging reads (sources/demo_pms: _TEXT_FIELDS, _DECIMAL_FIELDS, _TIMES); a rest_pms
# source maps its API's records onto exactly these. Kept here so that loading a tenant file imports no
# source code; tests/sources/test_rest_pms.py checks they stay equal.
REST_PMS_FIELDS = {
    "charges": ("id", "folio_id", "reservation_id", "outlet", "category", "description", "currency", "status",
                "quantity", "amount", "vat_rate", "posted_at", "updated_at"),
    "payments": ("id", "folio_id", "reservation_id", "kind", "method", "currency", "company_id", "company_name",
                 "reference", "status", "amount", "posted_at", "updated_at"),
}
# What staging cannot do without (transforms/stage_pms.REQUIRED, plus the record's id).
REST_PMS_REQUIRED = {
    "charges": ("id", "posted_at", "updated_at", "category", "amount", "vat_rate", "currency", "status"),
    "payments": ("id", "posted_at", "updated_at", "kind", "method", "amount", "currency", "status"),
}
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PARAM_NAME = r"^[A-Za-z0-9_.\[\]-]+$"
_PATH_IN_RECORD = r"^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$"  # dotted: folio.id, guest.company.name
# What the HTTP audit log replaces by "***" (sources/http_audit uses this pattern): a key sent under
# another name would be written to the log in clear, so such names are refused.
SECRET_NAME_PATTERN = r"(?i)authorization|cookie|token|secret|password|passwd|api[-_]?key|client[-_]?secret"
# Times in query parameters: ISO 8601 in UTC, Unix seconds or milliseconds, or a strftime pattern (UTC).
_TIME_FORMAT = r"^(iso|epoch|epoch_ms|.*%.*)$"


class RestPmsNoAuth(_Model):
    type: Literal["none"]


class RestPmsBearerAuth(_Model):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token_env: str = Field(pattern=_ENV_NAME)


class RestPmsApiKeyAuth(_Model):
    """A key in a header (``X-Api-Key``) or a query parameter (``api_key``)."""

    type: Literal["api_key"]
    key_env: str = Field(pattern=_ENV_NAME)
    name: str = Field(default="X-Api-Key", pattern=_PARAM_NAME)
    location: Literal["header", "query"] = "header"

    @field_validator("name")
    @classmethod
    def _redacted_in_the_audit_log(cls, value: str) -> str:
        if not re.search(SECRET_NAME_PATTERN, value):
            raise ValueError(f"{value!r} would be written in clear to the HTTP audit log; the name must contain "
                             "api_key, apikey, token, secret or authorization")
        return value


class RestPmsBasicAuth(_Model):
    type: Literal["basic"]
    username_env: str = Field(pattern=_ENV_NAME)
    password_env: str = Field(pattern=_ENV_NAME)


class RestPmsOAuth2(_Model):
    """OAuth 2.0 client credentials (RFC 6749 §4.4); the client authenticates with HTTP Basic (§2.3.1),
    so its secret never travels in a body the audit log would write."""

    type: Literal["oauth2"]
    token_url: str = Field(pattern=r"^https?://")
    client_id_env: str = Field(pattern=_ENV_NAME)
    client_secret_env: str = Field(pattern=_ENV_NAME)
    scopes: list[str] = []


RestPmsAuth = Annotated[Union[RestPmsNoAuth, RestPmsBearerAuth, RestPmsApiKeyAuth, RestPmsBasicAuth, RestPmsOAuth2],
                        Field(discriminator="type")]


class RestPmsCursorPaginator(_Model):
    """A token in the body (``next_cursor``) sent back as a parameter."""

    type: Literal["cursor"]
    cursor_path: str = Field(pattern=_PATH_IN_RECORD)
    cursor_param: str = Field(pattern=_PARAM_NAME)


class RestPmsPageNumberPaginator(_Model):
    """``page=1, 2, …`` until ``total_path`` (the number of pages) or an empty page."""

    type: Literal["page_number"]
    page_param: str = Field(default="page", pattern=_PARAM_NAME)
    base_page: int = Field(default=1, ge=0, le=1)
    total_path: str | None = Field(default=None, pattern=_PATH_IN_RECORD)


class RestPmsOffsetPaginator(_Model):
    """``offset=0, N, 2N, …`` with ``limit=N`` (the source's page_size)."""

    type: Literal["offset"]
    offset_param: str = Field(default="offset", pattern=_PARAM_NAME)
    limit_param: str = Field(default="limit", pattern=_PARAM_NAME)
    total_path: str | None = Field(default=None, pattern=_PATH_IN_RECORD)


class RestPmsHeaderLinkPaginator(_Model):
    """The next page's URL in the ``Link`` header (RFC 8288)."""

    type: Literal["header_link"]
    links_next_key: str = "next"


class RestPmsJsonLinkPaginator(_Model):
    """The next page's URL in the body."""

    type: Literal["json_link"]
    next_url_path: str = Field(pattern=_PATH_IN_RECORD)


RestPmsPaginator = Annotated[Union[RestPmsCursorPaginator, RestPmsPageNumberPaginator, RestPmsOffsetPaginator,
                                   RestPmsHeaderLinkPaginator, RestPmsJsonLinkPaginator],
                             Field(discriminator="type")]


class RestPmsIncremental(_Model):
    """Daily runs ask for what changed since the last one: ``start_param`` (and ``end_param``, for APIs that
    want both ends) carry the cursor, which is the record's ``cursor`` time after mapping."""

    start_param: str = Field(pattern=_PARAM_NAME)
    end_param: str | None = Field(default=None, pattern=_PARAM_NAME)
    cursor: Literal["updated_at", "posted_at"] = "updated_at"


class RestPmsWindow(_Model):
    """Backfills ask for what was posted in [from, to)."""

    from_param: str = Field(pattern=_PARAM_NAME)
    to_param: str = Field(pattern=_PARAM_NAME)


class RestPmsResource(_Model):
    """One listing of the API and how its records become the raw ``charges`` or ``payments`` columns."""

    table: ClassVar[str]
    path: str  # relative to base_url, no query: "charges", "v2/folio-items"
    data_selector: str | None = Field(default=None, pattern=r"^\$?[A-Za-z0-9_.\[\]*-]+$")  # where records are
    params: dict[str, str | int | bool] = {}  # sent with every request
    incremental: RestPmsIncremental | None = None  # without it, daily runs read everything (hashes dedupe)
    window: RestPmsWindow | None = None  # without it, no backfill
    time_format: str = Field(default="iso", pattern=_TIME_FORMAT)  # of the times sent as parameters
    fields: dict[str, str] = {}  # canonical field -> dotted path in the record
    constants: dict[str, str] = {}  # canonical field -> the same value for every record
    values: dict[str, dict[str, str]] = {}  # canonical field -> {their value: ours}; others are refused
    amount_scale: int | None = Field(default=None, ge=0, le=4)  # amounts in minor units: 2 = cents

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_~.-]+(/[A-Za-z0-9_~.-]+)*$", value) or ".." in value.split("/"):
            raise ValueError("is not a path below base_url (letters, digits, - _ . ~ between slashes, no leading "
                             "slash, no scheme or host; query parameters go in params)")
        return value

    @field_validator("fields")
    @classmethod
    def _dotted_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if not re.match(_PATH_IN_RECORD, path):
                raise ValueError(f"fields.{name} = {path!r} is not a dotted path into the record (e.g. folio.id)")
        return value

    @model_validator(mode="after")
    def _maps_what_staging_needs(self) -> RestPmsResource:
        known = REST_PMS_FIELDS[self.table]
        for key in ("fields", "constants", "values"):
            for name in getattr(self, key):
                if name not in known:
                    raise ValueError(f"{key}.{name}: {self.table} have no field {name!r} (known: {', '.join(known)})")
        both = sorted(set(self.fields) & set(self.constants))
        if both:
            raise ValueError(f"{', '.join(both)}: in fields and in constants; give one")
        for name in REST_PMS_REQUIRED[self.table]:
            if name not in self.fields and name not in self.constants:
                raise ValueError(f"fields.{name} is missing: map it to the record's field (fields.{name} = "
                                 f"\"path.in.record\") or give constants.{name}")
        for name in ("id", "posted_at", "updated_at", "amount"):
            if name in self.constants:
                raise ValueError(f"constants.{name}: {name} must come from the record")
        for name in self.values:
            if name in ("quantity", "amount", "vat_rate", "posted_at", "updated_at"):
                raise ValueError(f"values.{name}: only text fields take a value map")
            if name not in self.fields:
                raise ValueError(f"values.{name}: {name} is not mapped in fields")
        return self


class RestPmsCharges(RestPmsResource):
    table: ClassVar[str] = "charges"


class RestPmsPayments(RestPmsResource):
    table: ClassVar[str] = "payments"


class RestPmsResources(_Model):
    charges: RestPmsCharges | None = None
    payments: RestPmsPayments | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> RestPmsResources:
        if self.charges is None and self.payments is None:
            raise ValueError("give [resources.charges], [resources.payments] or both")
        return self


class RestPmsSource(ApiSource):
    """Any PMS/POS REST API, described entirely here (``sources/rest_pms``): how to sign in, how pages
    follow each other, which parameters select what changed (daily) or what was posted (backfill),
    and where each canonical field sits in the API's records."""

    role: ClassVar[str] = "sales"
    type: Literal["rest_pms"]
    auth: RestPmsAuth = RestPmsNoAuth(type="none")
    paginator: RestPmsPaginator
    page_size_param: str | None = Field(default=None, pattern=_PARAM_NAME)  # carries page_size; none: API's own
    timezone: str | None = None  # record times without an offset are in this zone; without it they are refused
    resources: RestPmsResources

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Paris'") from exc
        return value


# --------------------------------------------------------------------------- entries_api

class EntriesApiSource(ApiSource):
    """An accounting-entries export API: entries not yet exported for ``system_id``, marked exported
    at most 10 at a time once they are safely stored (``sources/entries_api``)."""

    role: ClassVar[str] = "journal"
    type: Literal["entries_api"]
    system_id: str = Field(min_length=1)  # who we are to the sending system: its entries pending for us
    token_env: str = "ENTRIES_API_TOKEN"  # variable holding our bearer token (never the token itself)
    page_size: int = Field(default=100, ge=1, le=500)  # the API serves at most 500 entries a page
    accounts: dict[str, str] = {}  # their account -> ours, where the charts differ (default: the same number)
    journal_code: str | None = Field(default=None, min_length=1)  # default: the journal each line names


API_SOURCES = (StripeSource, PaypalSource, TrainingSource, RestPmsSource, EntriesApiSource)
