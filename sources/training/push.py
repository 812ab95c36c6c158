"""Answering the training system: payment status and invoice updates, with conflict rules.

Payment status. When our bank matches settle a training invoice (fully or partly), we record a
payment on it (``POST /invoices/{id}/payments``, ``source`` "ledgerflow" on the system's side).
Each active match is pushed once, with an ``Idempotency-Key`` derived from (tenant, source,
match id) and written to our push table *before* the call: a run that dies between the call
and recording its answer retries with the same key and the system answers as the first time,
so nothing is recorded twice. Rules:

* the invoice is void in the system -> nothing is pushed; a conflict is recorded (alert). We
  never overwrite the system's decision.
* the system already shows the invoice paid -> nothing is pushed; noted.
* a match reversed after its payment was pushed -> a conflict (someone corrects it by hand).

Invoice updates (purchase-order number, due date) come from the finance team (a CSV in the
inbox, or the CLI). They are sent with ``If-Match: <version we last pulled>``. On 412 (the
invoice moved since) the invoice is read again and, field by field:

* the system already has our value -> done for that field;
* the system changed that same field since our version (it differs from what we pulled and
  from ours) -> the system wins; a conflict is recorded with both values;
* otherwise (only other fields moved) -> the field is sent again, once, with the new version.
  A second 412 leaves the update pending for the next run.

A void invoice takes no update (409): a conflict. An empty cell means "leave as it is".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sources.http_audit import audited_adapter, retry_after_seconds
from sources.training import TrainingAuthError

UPDATABLE = ("po_number", "due_date")
RETRY_STATUSES = (429, 500, 502, 503, 504)


class TrainingApiError(RuntimeError):
    """The system could not be reached or kept failing; the work stays pending for the next run."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict


@dataclass(frozen=True)
class FieldConflict:
    field: str
    ours: str | None
    theirs: str | None
    pulled: str | None  # what the field held in the version we last pulled


def payment_refusal(invoice: dict) -> str | None:
    """Why a payment must not be pushed to this invoice (``void``, ``paid``), or None."""
    if invoice.get("status") == "void":
        return "void"
    if invoice.get("status") == "paid":
        return "paid"
    return None


def after_precondition_failed(ours: dict, pulled: dict, current: dict) -> tuple[dict, list[FieldConflict]]:
    """After a 412: (the fields still to send, the fields where the system wins)."""
    remaining: dict = {}
    conflicts: list[FieldConflict] = []
    for field, value in ours.items():
        theirs = current.get(field)
        if theirs == value:
            continue
        if theirs != pulled.get(field):
            conflicts.append(FieldConflict(field, value, theirs, pulled.get(field)))
            continue
        remaining[field] = value
    return remaining, conflicts


class TrainingClient:
    """The few calls the push-back makes. 429 and 5xx are retried after ``Retry-After`` (or a short
    growing wait) with an injectable ``sleep``; a 401 is a ``TrainingAuthError`` naming the variable."""

    def __init__(self, base_url: str, token: str, *, token_env: str, session=None, retries: int = 3,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:  # not money
        import requests

        if session is None:
            session = requests.Session()
            session.mount("http://", audited_adapter())
            session.mount("https://", audited_adapter())
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.token, self.token_env = token, token_env
        self.session, self.retries, self.timeout, self.sleep = session, retries, timeout, sleep

    def _call(self, method: str, path: str, *, body: dict | None = None, headers: dict | None = None) -> Answer:
        from requests import HTTPError, RequestException

        url = self.base_url + path
        sent = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", **(headers or {})}
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, json=body, headers=sent, timeout=self.timeout)
            except HTTPError as exc:  # a session that raises for status (dlt's)
                if exc.response is None:
                    raise
                response = exc.response
            except RequestException as exc:
                if attempt == self.retries:
                    raise TrainingApiError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
                self.sleep(0.5 * 2 ** attempt)  # not money
                continue
            if response.status_code == 401:
                raise TrainingAuthError(f"{method} {url}: HTTP 401: the token in the environment variable "
                                        f"{self.token_env} is wrong, expired or revoked")
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                self.sleep(wait if wait is not None else 0.5 * 2 ** attempt)  # not money
                continue
            if response.status_code in RETRY_STATUSES:
                raise TrainingApiError(f"{method} {url}: HTTP {response.status_code} after {self.retries} retries")
            try:
                answer = response.json()
            except ValueError:
                answer = {"error": response.text[:200]}
            return Answer(response.status_code, answer if isinstance(answer, dict) else {"data": answer})
        raise AssertionError("unreachable")

    def invoice(self, invoice_id: str) -> Answer:
        return self._call("GET", f"/invoices/{invoice_id}")

    def update_invoice(self, invoice_id: str, version: int, changes: dict) -> Answer:
        return self._call("PATCH", f"/invoices/{invoice_id}", body=changes, headers={"If-Match": str(version)})

    def payments_of(self, invoice_id: str) -> Answer:
        return self._call("GET", f"/invoices/{invoice_id}/payments")

    def record_payment(self, invoice_id: str, key: str, payment: dict) -> Answer:
        return self._call("POST", f"/invoices/{invoice_id}/payments", body=payment,
                          headers={"Idempotency-Key": key})
