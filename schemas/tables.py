"""Pandera models of every table that crosses a stage boundary.

The same models give the DuckDB DDL (``warehouse.db``), so a column is declared once.
Money columns are ``Money`` (Decimal(18, 2)) and are never coerced: coercion would
silently round. Timestamps are UTC.
"""

from __future__ import annotations

from typing import Annotated, Optional

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.currencies import ISO_4217
from schemas.money import Money, Quantity, Rate

Timestamp = Annotated[pl.Datetime, "us", "UTC"]
CURRENCIES = sorted(ISO_4217)


def _nullable(**kwargs) -> object:
    return pa.Field(nullable=True, **kwargs)


class _Strict:
    strict = True
    coerce = False


class SalesLine(pa.DataFrameModel):
    """One posted charge of an operational system (gross, VAT included)."""

    line_id: str = pa.Field(unique=True)
    source: str
    source_id: str
    source_version: Timestamp
    business_date: pl.Date
    posted_at: Timestamp
    category: str = pa.Field(str_length={"min_value": 1})
    description: Optional[str] = _nullable()
    folio_id: Optional[str] = _nullable()
    outlet: Optional[str] = _nullable()
    quantity: Quantity
    amount: Money
    vat_rate: Rate = pa.Field(ge=0, le=100)
    currency: str = pa.Field(isin=CURRENCIES)

    class Config(_Strict):
        name = "sales_line"


class Payment(pa.DataFrameModel):
    """Money received (+) or paid back (-) by an operational system.

    ``kind`` is ``payment`` (settles a folio) or ``deposit`` (an advance payment,
    a liability until the stay).
    """

    payment_id: str = pa.Field(unique=True)
    source: str
    source_id: str
    source_version: Timestamp
    business_date: pl.Date
    posted_at: Timestamp
    kind: str = pa.Field(isin=["payment", "deposit"])
    method: str = pa.Field(str_length={"min_value": 1})
    amount: Money
    currency: str = pa.Field(isin=CURRENCIES)
    folio_id: Optional[str] = _nullable()
    partner_id: Optional[str] = _nullable()
    partner_name: Optional[str] = _nullable()
    reference: Optional[str] = _nullable()

    class Config(_Strict):
        name = "payment"


class OpenItem(pa.DataFrameModel):
    """Something the company expects to be settled (ITEMS.csv of INTERFACES §1)."""

    item_id: str = pa.Field(unique=True)
    kind: str = pa.Field(isin=["invoice", "bill", "payout", "refund"])
    document_number: str
    issue_date: pl.Date
    due_date: Optional[pl.Date] = _nullable()
    amount_open: Money
    currency: str = pa.Field(isin=CURRENCIES)
    partner_name: Optional[str] = _nullable()
    partner_iban: Optional[str] = _nullable()
    partner_id: Optional[str] = _nullable()
    company_id: Optional[str] = _nullable()
    bank_account: Optional[str] = _nullable()
    structured_ref: Optional[str] = _nullable()
    settlement_ref: Optional[str] = _nullable()

    class Config(_Strict):
        name = "open_item"


class InvoiceLine(pa.DataFrameModel):
    """One line of an issued invoice or credit note (INVOICES.csv of INTERFACES §3)."""

    invoice_number: str
    line_id: str
    invoice_type: str = pa.Field(isin=["380", "381"])
    issue_date: pl.Date
    due_date: Optional[pl.Date] = _nullable()
    currency: str = pa.Field(isin=CURRENCIES)
    seller_name: str
    seller_vat_id: Optional[str] = _nullable()
    buyer_name: str
    buyer_vat_id: Optional[str] = _nullable()
    buyer_reference: Optional[str] = _nullable()
    billing_reference: Optional[str] = _nullable()
    item_name: str
    quantity: Quantity
    unit_code: str
    unit_price: Money
    vat_category: str
    vat_rate: Rate = pa.Field(ge=0, le=100)
    line_net: Money

    class Config(_Strict):
        name = "invoice_line"
        unique = ["invoice_number", "line_id"]


class BankLine(pa.DataFrameModel):
    """One bank statement line (BANK.csv of INTERFACES §1 plus the statement columns of §2)."""

    bank_line_id: str = pa.Field(unique=True)
    bank_account: str
    booking_date: pl.Date
    value_date: Optional[pl.Date] = _nullable()
    amount: Money
    currency: str = pa.Field(isin=CURRENCIES)
    counterparty_name: Optional[str] = _nullable()
    counterparty_iban: Optional[str] = _nullable()
    remittance_info: Optional[str] = _nullable()
    structured_ref: Optional[str] = _nullable()
    statement_id: Optional[str] = _nullable()
    sequence: Optional[int] = _nullable()
    transaction_code: Optional[str] = _nullable()
    end_to_end_id: Optional[str] = _nullable()

    class Config(_Strict):
        name = "bank_line"


class Match(pa.DataFrameModel):
    """One reconciliation decision (MATCHES.csv of INTERFACES §1 plus its trail).

    The table is append-only. ``auto`` and ``confirmed`` rows apply money; a
    ``reversed`` row cancels the row named in ``reverses`` (an undo); a ``rejected``
    row (amount 0) means the pair must never be proposed again.
    """

    match_id: str = pa.Field(unique=True)
    bank_line_id: str
    item_id: Optional[str] = _nullable()
    amount_applied: Money
    rule: str
    confidence: float = pa.Field(ge=0, le=1)  # not money
    reason: Optional[str] = _nullable(
        isin=["bank_fee", "processor_fee", "discount", "rounding", "fx", "other"]
    )
    decision: str = pa.Field(isin=["auto", "suggested", "confirmed", "rejected", "reversed"])
    run_id: str
    decided_at: Timestamp
    reverses: Optional[str] = _nullable()
    decided_by: Optional[str] = _nullable()
    note: Optional[str] = _nullable()

    class Config(_Strict):
        name = "match"


class MatchSuggestion(pa.DataFrameModel):
    """The review queue: what the last reconcile run could not decide alone (replaced each run)."""

    bank_line_id: str
    item_id: str
    rank: int = pa.Field(ge=1)
    why: str
    run_id: str

    class Config(_Strict):
        name = "match_suggestion"
        unique = ["bank_line_id", "item_id"]


class Discrepancy(pa.DataFrameModel):
    """What the last reconcile run found wrong or still open (replaced each run; alerts say
    which ones are new)."""

    problem_id: str = pa.Field(unique=True)
    kind: str
    bank_line_id: Optional[str] = _nullable()
    item_id: Optional[str] = _nullable()
    amount: Optional[Money] = _nullable()
    age_days: Optional[int] = _nullable()
    detail: str
    first_seen_run: str
    run_id: str

    class Config(_Strict):
        name = "discrepancy"


class BankStatement(pa.DataFrameModel):
    """One bank statement as delivered (a file may hold several), for the continuity check:
    the closing balance of one statement must be the opening balance of the next."""

    statement_key: str = pa.Field(unique=True)  # fingerprint: account, id, balances, dates, line count
    source: str
    file_name: str
    file_position: int = pa.Field(ge=0)  # order of the statement in its file
    statement_id: str
    bank_account: str
    currency: str = pa.Field(isin=CURRENCIES)
    opening_balance: Optional[Money] = _nullable()
    closing_balance: Optional[Money] = _nullable()
    first_booking: Optional[pl.Date] = _nullable()
    last_booking: Optional[pl.Date] = _nullable()
    statement_date: Optional[pl.Date] = _nullable()
    lines: int = pa.Field(ge=0)
    new_lines: int = pa.Field(ge=0)  # lines not seen before (a re-delivery or an overlap adds none)
    run_id: str
    taken_at: Timestamp

    class Config(_Strict):
        name = "bank_statement"


class StatementGap(pa.DataFrameModel):
    """Two consecutive statements of an account whose balances do not join up: lines are missing
    (a statement never arrived) or were booked twice. Alerted once, when first seen."""

    gap_id: str = pa.Field(unique=True)
    bank_account: str
    currency: str
    previous_statement: str
    previous_closing: Money
    next_statement: str
    next_opening: Money
    difference: Money
    first_seen_run: str

    class Config(_Strict):
        name = "statement_gap"


class IssuedInvoice(pa.DataFrameModel):
    """An invoice or credit note the tenant issued (from INVOICES.csv files in the inbox), kept as
    the canonical JSON of ``destinations.exports.invoices``: exact, and what e-invoices are written from.
    Every version is kept: a destination that exported one keeps it, the others take the latest."""

    invoice_number: str
    version: int = pa.Field(ge=1)
    invoice_type: str = pa.Field(isin=["380", "381"])
    issue_date: pl.Date
    buyer_name: str
    document: str
    content_hash: str
    source_file: str
    run_id: str
    loaded_at: Timestamp

    class Config(_Strict):
        name = "issued_invoice"
        unique = ["invoice_number", "version"]


class InboxFile(pa.DataFrameModel):
    """A file taken from the reconciliation inbox: loaded, or quarantined with the reason."""

    sha256: str = pa.Field(unique=True)
    name: str
    kind: str = pa.Field(isin=["bank", "items", "invoices"])
    rows: int = pa.Field(ge=0)
    status: str = pa.Field(isin=["loaded", "quarantined"])
    reason: Optional[str] = _nullable()
    run_id: str
    taken_at: Timestamp

    class Config(_Strict):
        name = "inbox_file"


class JournalLine(pa.DataFrameModel):
    """One line of a balanced journal entry (JOURNAL.csv of INTERFACES §3 plus line_no)."""

    entry_id: str
    line_no: int = pa.Field(ge=1)
    journal_code: str = pa.Field(str_length={"min_value": 1})
    entry_date: pl.Date
    account: str = pa.Field(str_length={"min_value": 1})
    account_name: str
    partner_id: Optional[str] = _nullable()
    partner_name: Optional[str] = _nullable()
    description: str
    debit: Money = pa.Field(ge=0)
    credit: Money = pa.Field(ge=0)
    currency: str = pa.Field(isin=CURRENCIES)
    vat_code: Optional[str] = _nullable()
    document_ref: str

    @pa.dataframe_check(error="exactly one of debit and credit is non-zero")
    def one_side_per_line(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(((pl.col("debit") > 0) ^ (pl.col("credit") > 0)).alias("ok"))

    @pa.dataframe_check(error="entry does not balance: sum(debit) != sum(credit) for its currency")
    def entry_balances(cls, data: PolarsData) -> pl.LazyFrame:
        by_entry = ["entry_id", "currency"]
        return data.lazyframe.select(
            (pl.col("debit").sum().over(by_entry) == pl.col("credit").sum().over(by_entry)).alias("ok")
        )

    class Config(_Strict):
        name = "journal_line"
        unique = ["entry_id", "line_no"]


class JournalEntry(pa.DataFrameModel):
    """Header of a journal entry: where it comes from, which version, and its content hash.

    ``entry_id`` derives from (tenant, source, business date, version), so a rerun
    finds the same ids. ``kind`` is ``original``, ``correction`` (a later version
    after an exported one changed) or ``reversal`` (cancels an exported version).
    """

    entry_id: str = pa.Field(unique=True)
    tenant: str
    source: str
    business_date: pl.Date
    entry_date: pl.Date
    version: int = pa.Field(ge=1)
    kind: str = pa.Field(isin=["original", "correction", "reversal"])
    reverses: Optional[str] = _nullable()
    content_hash: str
    line_count: int = pa.Field(ge=1)
    run_id: str
    created_at: Timestamp

    class Config(_Strict):
        name = "journal_entry"


class Reject(pa.DataFrameModel):
    """A record, or a group of records, that a stage refused, with the reason.

    Nothing is deleted from this table; ``resolved_run_id`` is set when a later run
    no longer finds the problem (a corrected source record, a fixed mapping).
    """

    reject_id: str = pa.Field(unique=True)
    problem_id: str  # the same problem found again has the same problem_id, never a second open row
    run_id: str
    stage: str = pa.Field(isin=["extract", "staging", "journal", "export", "reconcile"])
    source: str
    table_name: str
    record_id: str
    record_version: Optional[str] = _nullable()
    business_date: Optional[pl.Date] = _nullable()
    column_name: Optional[str] = _nullable()
    value: Optional[str] = _nullable()
    reason: str
    payload: Optional[str] = _nullable()
    rejected_at: Timestamp
    resolved_run_id: Optional[str] = _nullable()

    class Config(_Strict):
        name = "rejects"


class ExportLog(pa.DataFrameModel):
    """The export ledger of DESIGN.md: what left the building, where, with which content."""

    tenant: str
    system_id: str
    object_type: str
    object_id: str
    content_hash: str
    exported_at: Timestamp
    external_id: Optional[str] = _nullable()
    note: Optional[str] = _nullable()
    batch_id: Optional[str] = _nullable()

    class Config(_Strict):
        name = "export_log"


class EntryTimeline(pa.DataFrameModel):
    """What happened to a journal entry after it was built, as the consuming system said (append-only):
    an ``exported`` row per system that marked it, with the note and who marked it."""

    entry_id: str
    system_id: str
    event: str = pa.Field(isin=["exported"])
    note: Optional[str] = _nullable()
    actor: str
    recorded_at: Timestamp  # not `at`: a reserved word in DuckDB

    class Config(_Strict):
        name = "entry_timeline"


class ExportBatch(pa.DataFrameModel):
    """One published export file (possibly empty) and its manifest."""

    tenant: str
    system_id: str
    batch_id: str = pa.Field(unique=True)
    period_kind: str = pa.Field(isin=["day", "week", "month"])
    period_start: pl.Date
    period_end: pl.Date
    file_name: str
    sha256: str
    entry_count: int
    line_count: int
    run_id: str
    created_at: Timestamp

    class Config(_Strict):
        name = "export_batch"


class ExportDelivery(pa.DataFrameModel):
    """One attempt to deliver a published export file: where, which content, and how it went.
    A file is delivered again only when its content changed or an operator forces it."""

    tenant: str
    system_id: str
    batch_id: str
    channel: str = pa.Field(isin=["local", "sftp", "email"])
    target: str  # the folder, sftp://user@host:port/dir, or the recipients (never a secret)
    file_name: str
    sha256: str
    bytes: int = pa.Field(ge=0)
    status: str = pa.Field(isin=["ok", "failed"])
    detail: Optional[str] = _nullable()
    forced: bool
    attempted_at: Timestamp
    run_id: str

    class Config(_Strict):
        name = "export_delivery"


class PostAttempt(pa.DataFrameModel):
    """An object about to be posted to an API, written before the call: if the run dies between
    the call and recording its result, the next run finds this row and looks the object up by its
    reference instead of posting it again. Removed once the object is recorded in export_log."""

    tenant: str
    system_id: str
    object_id: str
    content_hash: str
    run_id: str
    started_at: Timestamp

    class Config(_Strict):
        name = "post_attempt"
        unique = ["tenant", "system_id", "object_id"]


class ClosedDay(pa.DataFrameModel):
    """A business day that a close has built, so that late changes to it are noticed later."""

    source: str
    business_date: pl.Date
    first_run_id: str
    closed_at: Timestamp

    class Config(_Strict):
        name = "closed_day"
        unique = ["source", "business_date"]


class StagedLoad(pa.DataFrameModel):
    """A dlt load whose rows have been staged. Staging takes every load not listed here, so rows
    loaded by a run that died before staging are staged by the next one."""

    source: str
    load_id: str
    run_id: str
    staged_at: Timestamp

    class Config(_Strict):
        name = "staged_load"
        unique = ["source", "load_id"]


class PendingDay(pa.DataFrameModel):
    """A business day whose canonical rows changed and whose journal has not been rebuilt since.

    Written in the staging transaction, cleared in the journal transaction: a run that dies in
    between leaves the day here for the next close to rebuild (and reverse, if it was exported).
    """

    source: str
    business_date: pl.Date
    noted_by_run: str

    class Config(_Strict):
        name = "pending_day"
        unique = ["source", "business_date"]


CANONICAL_MODELS: tuple[type[pa.DataFrameModel], ...] = (
    SalesLine,
    Payment,
    OpenItem,
    InvoiceLine,
    BankLine,
    BankStatement,
    StatementGap,
    Match,
    MatchSuggestion,
    Discrepancy,
    InboxFile,
    IssuedInvoice,
    JournalEntry,
    JournalLine,
    Reject,
    ExportLog,
    EntryTimeline,
    ExportBatch,
    ExportDelivery,
    PostAttempt,
    ClosedDay,
    StagedLoad,
    PendingDay,
)


def table_name(model: type[pa.DataFrameModel]) -> str:
    return model.Config.name


def empty_frame(model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """A zero-row frame with the model's exact column types."""
    return pl.DataFrame(schema=polars_schema(model))


def polars_schema(model: type[pa.DataFrameModel]) -> dict[str, pl.DataType]:
    return {name: column.dtype.type for name, column in model.to_schema().columns.items()}
