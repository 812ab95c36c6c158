"""Issued invoices in the tenant's DuckDB file (``issued_invoice``), from INVOICES.csv files dropped
into ``<inbox>/invoices/`` by the billing system, for the e-invoice destinations (UBL, Factur-X).

A file is taken once (by content hash) and checked completely; a malformed one moves to the
inbox's quarantine with the reason (file, line, column, value) while the good ones go on. Every
version of an invoice is kept. A destination exports the latest version it has not exported yet
and never another version after that: a destination that exported an invoice keeps what it sent
(rewrites give those bytes again), and a later change to it is reported as a reject naming the
destinations -- an issued invoice is corrected by a credit note, not by a new version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from destinations.exports.invoices import Invoice, invoice_document, invoice_from_document, read_invoices
from schemas.tables import InboxFile, IssuedInvoice
from schemas.tenant import Tenant
from sources.recon_csv import InputError
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, transaction
from warehouse.recon import quarantine_file


@dataclass
class InvoiceIntake:
    loaded: list[tuple[str, int]] = field(default_factory=list)  # (file name, invoices new or replaced)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    rejected: list[str] = field(default_factory=list)  # changes to invoices already exported


def take_invoice_inbox(con: duckdb.DuckDBPyConnection, tenant: Tenant, *, run_id: str, now: datetime
                       ) -> InvoiceIntake:
    inbox = tenant.inbox_path()
    intake = InvoiceIntake()
    for path, digest in _new_files(con, tenant):
        try:
            invoices = read_invoices(path)
        except InputError as exc:
            quarantine_file(con, path, inbox, "invoices", digest, str(exc), run_id=run_id, now=now)
            intake.quarantined.append((path.name, str(exc)))
            continue
        with transaction(con):
            stored = _store(con, invoices, path, intake, run_id=run_id, now=now)
            insert(con, InboxFile, pl.DataFrame([{
                "sha256": digest, "name": path.name, "kind": "invoices", "rows": stored, "status": "loaded",
                "reason": None, "run_id": run_id, "taken_at": now}]))
        intake.loaded.append((path.name, stored))
    return intake


def _new_files(con: duckdb.DuckDBPyConnection, tenant: Tenant):
    """(path, sha256) of the INVOICES.csv files in ``<inbox>/invoices`` not taken yet, by name."""
    folder = tenant.inbox_path() / "invoices"
    if not folder.is_dir():
        return
    known = {row[0] for row in run(con, "SELECT sha256 FROM inbox_file")}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv"
                       and not p.name.startswith(".")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in known:
            known.add(digest)
            yield path, digest


def peek_invoice_inbox(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> list[Invoice]:
    """The invoices the next intake would take, read without storing or moving anything (for dry
    runs); a file that would be quarantined adds none."""
    invoices = []
    for path, _ in _new_files(con, tenant):
        try:
            invoices += read_invoices(path)
        except InputError:
            continue
    return invoices


def _store(con, invoices: list[Invoice], path: Path, intake: InvoiceIntake, *, run_id: str, now: datetime) -> int:
    numbers = [invoice.invoice_number for invoice in invoices]
    latest = {number: (version, digest) for number, version, digest in run(con, """
        SELECT invoice_number, version, content_hash FROM issued_invoice
        WHERE invoice_number IN (SELECT unnest(?::VARCHAR[])) QUALIFY row_number() OVER (
            PARTITION BY invoice_number ORDER BY version DESC) = 1
    """, [numbers])}
    exported: dict[str, list[tuple[str, str]]] = {}
    for number, system, digest in run(con, """
        SELECT object_id, system_id, content_hash FROM export_log
        WHERE object_type = 'invoice' AND object_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY system_id
    """, [numbers]):
        exported.setdefault(number, []).append((system, digest))
    rows, changed = [], []
    for invoice in invoices:
        document = invoice_document(invoice)
        digest = hashlib.sha256(document.encode()).hexdigest()
        number = invoice.invoice_number
        version, known = latest.get(number, (0, None))
        if known == digest:
            continue
        keeping = [system for system, sent in exported.get(number, []) if sent != digest]
        if keeping:
            changed.append((number, keeping))
        rows.append({"invoice_number": number, "version": version + 1, "invoice_type": invoice.invoice_type,
                     "issue_date": invoice.issue_date, "buyer_name": invoice.buyer.name or "", "document": document,
                     "content_hash": digest, "source_file": path.name, "run_id": run_id, "loaded_at": now})
    if rows:
        insert(con, IssuedInvoice, pl.DataFrame(rows))
    if changed:
        problems = [{"source": "inbox", "table_name": "issued_invoice", "record_id": number,
                     "record_version": None, "business_date": None, "column_name": "invoice_number", "value": number,
                     "reason": f"{path.name}: invoice {number} changed after it was exported to "
                               f"{', '.join(systems)}, which keep the version they received; an issued invoice "
                               "is corrected by a credit note (destinations that have not exported it take this "
                               "version)", "payload": None} for number, systems in changed]
        insert(con, reject_store.Reject, reject_store.with_ids(pl.DataFrame(problems, schema_overrides={
            "business_date": pl.Date, "record_version": pl.String, "payload": pl.String}),
            stage="export", run_id=run_id, now=now))
        intake.rejected += [problem["reason"] for problem in problems]
    return len(rows)


def pending_invoices(con: duckdb.DuckDBPyConnection, system_id: str, up_to: date) -> list[tuple[str, Invoice]]:
    """(content hash, invoice) of the latest version of every invoice issued up to ``up_to`` and not
    yet exported to ``system_id``, in issue-date and number order."""
    rows = query(con, """
        SELECT i.content_hash, i.document FROM issued_invoice i
        WHERE i.issue_date <= ? AND NOT EXISTS (
            SELECT 1 FROM export_log x WHERE x.system_id = ? AND x.object_type = 'invoice'
              AND x.object_id = i.invoice_number)
        QUALIFY row_number() OVER (PARTITION BY i.invoice_number ORDER BY i.version DESC) = 1
        ORDER BY i.issue_date, i.invoice_number
    """, [up_to, system_id])
    return [(digest, invoice_from_document(document)) for digest, document in rows.iter_rows()]


def invoice_version(con: duckdb.DuckDBPyConnection, number: str, content_hash: str) -> Invoice:
    """The version of an invoice with this content hash (the one a destination exported)."""
    rows = run(con, "SELECT document FROM issued_invoice WHERE invoice_number = ? AND content_hash = ?",
               [number, content_hash])
    if not rows:
        raise RuntimeError(f"invoice {number}: the version exported (sha256 {content_hash}) is not in issued_invoice")
    return invoice_from_document(rows[0][0])
