"""``ledgerflow export FORMAT``: JOURNAL.csv (+ COMPANY.toml, OPENING.csv) to a regional export
file, or INVOICES.csv to one e-invoice file per invoice (INTERFACES §3). Pure and offline. Everything is checked and every file rendered before
anything is written, so a refusal (exit 2) leaves nothing behind; files are written to a
temporary name and renamed."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from destinations.delivery.local import publish
from destinations.exports import INVOICE_FORMATS, LEDGER_FORMATS, available, invoice_format, ledger_format
from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from schemas.company import CompanyError, load_company
from sources.recon_csv import InputError

__all__ = ["ExportProblem", "export_files", "export_invoice_files", "parse_period"]


class ExportProblem(ValueError):
    """Input, configuration or data the format cannot carry; nothing was written."""


def parse_period(text: str) -> tuple[date, date]:
    match = re.fullmatch(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\.\.([0-9]{4}-[0-9]{2}-[0-9]{2})", text.strip())
    try:
        start, end = (date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))) if match else (None,
                                                                                                             None)
    except ValueError:
        start = end = None
    if start is None or end is None or end < start:
        raise ExportProblem(f"--period {text!r}: expected YYYY-MM-DD..YYYY-MM-DD, the first day not after the last")
    return start, end


def _unknown(fmt: str) -> ExportProblem:
    known = ", ".join([*available(), "template:<name>"])
    what = "is not written yet" if fmt in LEDGER_FORMATS or fmt in INVOICE_FORMATS else "is not an export format"
    return ExportProblem(f"format {fmt!r} {what}; available: {known}")


def export_files(fmt: str, journal: Path, company: Path, period: str, out: Path,
                 opening: Path | None = None) -> list[Path]:
    if fmt in INVOICE_FORMATS:
        raise ExportProblem(f"format {fmt!r} is an e-invoice format: it reads --invoices INVOICES.csv, not --journal")
    template = fmt.removeprefix("template:") if fmt.startswith("template:") else None
    module = None if template is not None else ledger_format(fmt)
    if module is None and template is None:
        raise _unknown(fmt)
    start, end = parse_period(period)
    try:
        settings = load_company(company)
        lines = read_journal(journal, start, end)
        openings = read_opening(opening)
    except (CompanyError, InputError) as exc:
        raise ExportProblem(str(exc)) from None
    other = lines.filter(lines["currency"] != settings.currency)
    if other.height:
        row = other.row(0, named=True)
        raise ExportProblem(f"{journal}: entry {row['entry_id']}: currency {row['currency']} is not the company "
                            f"currency {settings.currency}")
    try:
        export = LedgerExport(settings, start, end, lines, openings, generated_at(end))
        if template is not None:
            from destinations.exports.templates import write_template

            files = write_template(template, export)
        else:
            files = module.write(export)
    except ExportRefused as exc:
        raise ExportProblem(f"{fmt}: {exc}") from None
    return [publish(out, name, content).path for name, content in files]


def export_invoice_files(fmt: str, invoices: Path, company: Path, period: str, out: Path) -> list[Path]:
    """One e-invoice file per invoice issued in the period; an invoice issued outside it is an error."""
    if fmt in LEDGER_FORMATS or fmt.startswith("template:"):
        raise ExportProblem(f"format {fmt!r} is a ledger format: it reads --journal JOURNAL.csv, not --invoices")
    module = invoice_format(fmt)
    if module is None:
        raise _unknown(fmt)
    start, end = parse_period(period)
    from destinations.exports.invoices import read_invoices

    try:
        settings = load_company(company)
        documents = read_invoices(invoices)
    except (CompanyError, InputError) as exc:
        raise ExportProblem(str(exc)) from None
    for invoice in documents:
        if not start <= invoice.issue_date <= end:
            raise ExportProblem(f"{invoices}: invoice {invoice.invoice_number}: issue_date {invoice.issue_date} is "
                                f"outside --period {start}..{end}")
    try:
        files = module.write_invoices(documents, settings)
    except ExportRefused as exc:
        raise ExportProblem(f"{fmt}: {exc}") from None
    return [publish(out, name, content).path for name, content in files]
