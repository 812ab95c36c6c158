"""A training system's invoices, payments and refunds -> ``open_item`` rows (+ rejects). Pure.

What an invoice item asks to be paid (``amount_open``) is its total less the payments *others*
recorded in the system (a card at the desk, a cheque): our reconciliation takes what its own
bank matches applied off ``amount_open`` (``warehouse.recon.open_state``), so a payment we
pushed back ourselves (``source`` "ledgerflow") must not lower it too, or that bank payment
would count twice. A void invoice asks for nothing (0); a draft is not an item at all; an
invoice paid by others beyond its total asks for 0 (the money going back comes as a refund).
Refunds do not lower the invoice: each one is its own item, ``kind`` refund with a negative
amount (money we pay back to the customer).

Input: the current version of each record (several rows for one id only when the system
delivered conflicting bodies for one version: all of them are rejected). Bad records are
rejected with the column, the value and why; the rest go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl

from schemas.currencies import ISO_4217
from schemas.tables import OpenItem, polars_schema
from transforms.stage_pms import REJECT_SCHEMA

INVOICE_STATUSES = ("draft", "open", "paid", "partially_paid", "void")
OURS = "ledgerflow"  # the ``source`` of payments we pushed (sources.training.push)
REQUIRED = {
    "invoices": ("number", "issue_date", "currency", "total", "status", "updated_at"),
    "payments": ("invoice_id", "amount", "currency", "updated_at"),
    "refunds": ("invoice_id", "amount", "currency", "refunded_at", "updated_at"),
}


@dataclass(frozen=True)
class StagedItems:
    items: pl.DataFrame  # OpenItem rows
    rejects: pl.DataFrame  # REJECT_SCHEMA
    scope: list[str]  # item ids these records stand for (replaced, whether they are staged or not)


def invoice_item_id(source: str, invoice_id: str) -> str:
    return f"{source}:{invoice_id}"


def refund_item_id(source: str, refund_id: str) -> str:
    return f"{source}:refund:{refund_id}"


def _problems(table: str, row: dict) -> list[tuple[str, str | None, str]]:
    """(column, value, reason) for each thing wrong with one record."""
    found: list[tuple[str, str | None, str]] = []
    invalid = json.loads(row["lf_invalid"]) if row.get("lf_invalid") else {}
    for column, problem in sorted(invalid.items()):
        found.append((column, problem["value"], problem["reason"]))
    for column in REQUIRED[table]:
        if row.get(column) is None and column not in invalid:
            found.append((column, None, "is missing"))
    currency = row.get("currency")
    if currency is not None and currency not in ISO_4217:
        found.append(("currency", currency, "is not an ISO 4217 currency code"))
    if table == "invoices":
        if row.get("status") is not None and row["status"] not in INVOICE_STATUSES:
            found.append(("status", row["status"], f"is not one of {', '.join(INVOICE_STATUSES)}"))
        if row.get("total") is not None and row["total"] < 0:
            found.append(("total", str(row["total"]), "is negative (money going back comes as a refund)"))
        if row.get("due_date") and row.get("issue_date") and row["due_date"] < row["issue_date"]:
            found.append(("due_date", str(row["due_date"]), f"is before the issue date {row['issue_date']}"))
    elif row.get("amount") is not None and row["amount"] <= 0:
        found.append(("amount", str(row["amount"]), "is not positive"))
    return found


def _reject(source: str, table: str, row: dict, column: str, value: str | None, reason: str) -> dict:
    return {"source": source, "table_name": table, "record_id": row["id"], "record_version": row["lf_record_hash"],
            "business_date": None, "column_name": column, "value": value, "reason": reason,
            "payload": json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)}


def _checked(source: str, table: str, frame: pl.DataFrame, rejects: list[dict]) -> dict[str, dict]:
    """The good records of one table by id; the bad ones described in ``rejects``."""
    rows = frame.to_dicts()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["id"]] = counts.get(row["id"], 0) + 1
    good: dict[str, dict] = {}
    for row in rows:
        found = _problems(table, row)
        if counts[row["id"]] > 1:
            found.append(("id", row["id"], f"was delivered {counts[row['id']]} times with different content for "
                                           "the same version"))
        rejects.extend(_reject(source, table, row, *problem) for problem in found)
        if not found:
            good[row["id"]] = row
    return good


def stage_training(invoices: pl.DataFrame, payments: pl.DataFrame, refunds: pl.DataFrame, *, source: str,
                   timezone: str, bank_account: str | None = None, pushed: frozenset[str] = frozenset()) -> StagedItems:
    """Open items of the given invoices (with every payment of theirs in ``payments``) and refunds.

    A payment is ours (already applied by the bank match that made us push it) when the system says
    so (``source`` "ledgerflow") or when its id is one the system gave back to a push (``pushed``):
    the second does not depend on how the system labels it."""
    rejects: list[dict] = []
    good_invoices = _checked(source, "invoices", invoices, rejects)
    good_payments = _checked(source, "payments", payments, rejects)
    good_refunds = _checked(source, "refunds", refunds, rejects)
    paid_by_others: dict[str, Decimal] = {}
    for payment in good_payments.values():
        invoice = good_invoices.get(payment["invoice_id"])
        if invoice is not None and payment["currency"] != invoice["currency"]:
            rejects.append(_reject(source, "payments", payment, "currency", payment["currency"],
                                   f"is not the currency of invoice {invoice['number']} ({invoice['currency']})"))
        elif payment.get("source") != OURS and payment["id"] not in pushed:
            paid_by_others[payment["invoice_id"]] = paid_by_others.get(payment["invoice_id"], 0) + payment["amount"]
    items = []
    for invoice in good_invoices.values():
        if invoice["status"] == "draft":
            continue
        open_amount = Decimal(0) if invoice["status"] == "void" else max(
            invoice["total"] - paid_by_others.get(invoice["id"], 0), Decimal(0))
        items.append(_item(invoice, invoice_item_id(source, invoice["id"]), "invoice", invoice["number"],
                           invoice["issue_date"], invoice["due_date"], open_amount, invoice["currency"], bank_account))
    zone = ZoneInfo(timezone)
    for refund in good_refunds.values():
        invoice = good_invoices.get(refund["invoice_id"]) or {}
        refunded: datetime = refund["refunded_at"]
        items.append(_item(invoice, refund_item_id(source, refund["id"]), "refund",
                           invoice.get("number") or refund["id"], refunded.astimezone(zone).date(), None,
                           -refund["amount"], refund["currency"], bank_account))
    scope = sorted({invoice_item_id(source, i) for i in invoices.get_column("id").to_list()}
                   | {refund_item_id(source, r) for r in refunds.get_column("id").to_list()})
    return StagedItems(
        pl.DataFrame(items, schema=polars_schema(OpenItem)).sort("item_id"),
        pl.DataFrame(rejects, schema=REJECT_SCHEMA).unique(maintain_order=True).sort(
            "table_name", "record_id", "column_name", nulls_last=True),
        scope)


def _item(invoice: dict, item_id: str, kind: str, number: str, issued, due, amount: Decimal, currency: str,
          bank_account: str | None) -> dict:
    return {"item_id": item_id, "kind": kind, "document_number": number, "issue_date": issued, "due_date": due,
            "amount_open": amount, "currency": currency, "partner_name": invoice.get("customer_name"),
            "partner_iban": invoice.get("customer_iban"), "partner_id": invoice.get("customer_id"),
            "company_id": None, "bank_account": bank_account, "structured_ref": None, "settlement_ref": None}
