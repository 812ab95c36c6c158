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
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    lookback_days: int = Field(default=3, ge=0, le=366)  # incremental runs re-read this far back

    def resolved_base_url(self) -> str | None:
        """``LEDGERFLOW_<TYPE>_BASE_URL``, else the tenant file's ``base_url``, else the production API."""
        return os.environ.get(f"LEDGERFLOW_{self.type.upper()}_BASE_URL") or self.base_url or self.default_base_url


# --------------------------------------------------------------------------- stripe (owner: sources/stripe)

class StripeSource(ApiSource):
    """Stripe: balance transactions, charges, refunds, disputes and payouts (``sources/stripe``)."""

    default_base_url: ClassVar[str | None] = "https://api.stripe.com"
    role: ClassVar[str] = "processor"
    type: Literal["stripe"]
    api_key_env: str = "STRIPE_API_KEY"  # variable holding the secret (or restricted) key
    account: str | None = None  # a connected account (``Stripe-Account`` header)
    page_size: int = Field(default=100, ge=1, le=100)
    payout_bank_account: str | None = None  # IBAN the payouts arrive on (open_item.bank_account)


# --------------------------------------------------------------------------- paypal (owner: sources/paypal)

class PaypalSource(ApiSource):
    """PayPal: the transaction search (reporting) API (``sources/paypal``)."""

    default_base_url: ClassVar[str | None] = "https://api-m.paypal.com"
    role: ClassVar[str] = "processor"
    type: Literal["paypal"]
    client_id_env: str = "PAYPAL_CLIENT_ID"
    client_secret_env: str = "PAYPAL_CLIENT_SECRET"
    page_size: int = Field(default=500, ge=1, le=500)
    payout_bank_account: str | None = None  # IBAN withdrawals arrive on (open_item.bank_account)


# --------------------------------------------------------------------------- training (owner: sources/training)

class TrainingSource(ApiSource):
    """A training-management system: course bookings' invoices, payments and refunds, pulled and
    answered (payment status, purchase-order number, due date) (``sources/training``)."""

    role: ClassVar[str] = "items"
    type: Literal["training"]
    token_env: str = "TRAINING_API_TOKEN"
    webhook_secret_env: str = "TRAINING_WEBHOOK_SECRET"


# --------------------------------------------------------------------------- rest_pms (owner: sources/rest_pms)

class RestPmsSource(ApiSource):
    """Any PMS/POS REST API, described entirely here (``sources/rest_pms``)."""

    role: ClassVar[str] = "sales"
    type: Literal["rest_pms"]


# --------------------------------------------------------------------------- entries_api (owner: sources/entries_api)

class EntriesApiSource(ApiSource):
    """An accounting-entries export API: entries not yet exported for ``system_id``, marked exported
    at most 10 at a time once they are safely stored (``sources/entries_api``)."""

    role: ClassVar[str] = "journal"
    type: Literal["entries_api"]
    system_id: str = Field(min_length=1)
    token_env: str = "ENTRIES_API_TOKEN"


API_SOURCES = (StripeSource, PaypalSource, TrainingSource, RestPmsSource, EntriesApiSource)
