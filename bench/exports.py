"""Exports: a month with N journal lines written in every ledger format (``ledgerflow export``'s
work after the journal was read and checked: ``FORMAT.write``).

Ours: each format's writer on the same checked journal (a hotel month: sales with VAT, card and
transfer payments, bank fees; N/4 entries of 4 lines). Baseline, in the same run: the bare Polars
``write_csv`` of the same frame -- what any export costs at least. Prints seconds per format, and
milliseconds per e-invoice (UBL, Factur-X) for N/1000 two-line invoices.
"""

from __future__ import annotations

import sys

from bench.common import peak_mb, report, run_pair

SIZES = {"smoke": 5_000, "full": 1_000_000}
FORMATS = ("csv", "fec", "datev", "saft-no", "xaf", "sie4", "beancount", "hledger", "template:xero-manual-journal")
COMPANY = {
    "name": "Hotel Example AS", "vat_id": "NO999999999MVA", "registration_id": "999999999", "country": "NO",
    "currency": "EUR", "street": "Karl Johans gate 1", "city": "Oslo", "postcode": "0154",
    "contact_name": "Kari Nordmann", "chart": "SKR04",
    "datev": {"consultant_number": 1234567, "client_number": 10001, "account_length": 6},
    "accounts": [{"number": n, "name": name, "type": t, "standard_account": std} for n, name, t, std in [
        ("411000", "Customers", "asset", "1500"), ("512000", "Bank", "asset", "1920"),
        ("706100", "Rooms", "income", "3000"), ("445712", "VAT payable", "liability", "2700"),
        ("627000", "Bank fees", "expense", "7770")]],
    "vat_codes": [{"code": "V10", "rate": "10.00", "account": "445712", "standard_code": "3"}],
}


def build(lines: int):
    """The checked LedgerExport of a month with ``lines`` journal lines."""
    from datetime import date, timedelta
    from decimal import Decimal

    import polars as pl

    from destinations.exports.ledger import JOURNAL_SCHEMA, LedgerExport, generated_at, read_opening
    from schemas.company import Company

    entries = max(1, lines // 4)
    ZERO = Decimal("0.00")  # noqa: N806 - a constant of this function
    rows = []
    for e in range(entries):
        cents = (e * 7919 % 90_000 + 1_000) * 10
        net, vat, fee = Decimal(cents).scaleb(-2), Decimal(cents // 10).scaleb(-2), Decimal("1.00")
        day = date(2026, 3, 1) + timedelta(days=e % 31)
        common = {"entry_id": f"E{e:07d}", "journal_code": "VT", "entry_date": day, "description": f"Invoice {e}",
                  "currency": "EUR", "document_ref": f"INV-{e}"}
        rows += [
            {**common, "account": "411000", "account_name": "Customers", "partner_id": f"C{e % 500}",
             "partner_name": f"Customer {e % 500}", "debit": net + vat - fee, "credit": ZERO, "vat_code": None},
            {**common, "account": "627000", "account_name": "Bank fees", "partner_id": None, "partner_name": None,
             "debit": fee, "credit": ZERO, "vat_code": None},
            {**common, "account": "706100", "account_name": "Rooms", "partner_id": None, "partner_name": None,
             "debit": ZERO, "credit": net, "vat_code": "V10"},
            {**common, "account": "445712", "account_name": "VAT payable", "partner_id": None, "partner_name": None,
             "debit": ZERO, "credit": vat, "vat_code": "V10"},
        ]
    frame = pl.DataFrame(rows, schema=JOURNAL_SCHEMA).sort("entry_date", "entry_id", maintain_order=True)
    end = date(2026, 3, 31)
    return LedgerExport(Company(**COMPANY), date(2026, 3, 1), end, frame, read_opening(None), generated_at(end))


def ours(lines: int) -> dict:
    import time

    from destinations.exports import ledger_format
    from destinations.exports.templates import write_template

    export = build(lines)
    seconds = {}
    for name in FORMATS:
        started = time.perf_counter()
        if name.startswith("template:"):
            write_template(name.removeprefix("template:"), export)
        else:
            ledger_format(name).write(export)
        seconds[name] = round(time.perf_counter() - started, 3)
    return {"seconds": round(sum(seconds.values()), 3), "per_format": seconds, "peak_rss_mb": peak_mb(),
            "lines": export.journal.height, "ms_per_invoice": invoices(max(10, lines // 1000))}


def invoices(count: int) -> dict:
    """Milliseconds per invoice written as UBL and as Factur-X (two lines, two VAT rates each)."""
    import time
    from datetime import date, timedelta
    from decimal import Decimal

    from destinations.exports import invoice_format
    from destinations.exports.invoices import Invoice, InvoiceLine, Party
    from schemas.company import Company

    company = Company(**{**COMPANY, "vat_id": "FR40303265045", "country": "FR"})
    seller = Party(None, None, None, None, None, None, "0009:30326504500017")
    buyer = Party("Customer SARL", "FR23552081317", "3 rue de la Paix", "Lyon", "69002", "FR", "0009:55208131700015")
    lines = (InvoiceLine("1", "Room", Decimal(3), Decimal("118.33"), "DAY", "S", Decimal(10), None),
             InvoiceLine("2", "Spa", Decimal(2), Decimal("25.00"), "C62", "S", Decimal(20), None))
    batch = [Invoice(f"F-{n:06d}", date(2026, 3, 1) + timedelta(days=n % 31), date(2026, 4, 30), "EUR", seller,
                     buyer, f"PO-{n}", "380", None, None, None, lines) for n in range(count)]
    timings = {}
    for name in ("ubl", "facturx"):
        started = time.perf_counter()
        invoice_format(name).write_invoices(batch, company)
        timings[name] = round(1000 * (time.perf_counter() - started) / count, 2)
    return timings


def baseline(lines: int) -> dict:
    import time

    export = build(lines)
    started = time.perf_counter()
    export.journal.write_csv()
    return {"seconds": round(time.perf_counter() - started, 3), "peak_rss_mb": peak_mb()}


def main(argv: list[str]) -> None:
    measured = run_pair("exports", SIZES, argv, ours, baseline)
    if measured:
        size, mine, bare = measured
        report("exports", size, mine, "Polars write_csv of the same journal (one format's floor)", bare,
               mine["lines"] * len(FORMATS), seconds_per_format=mine["per_format"], formats=list(FORMATS),
               ms_per_invoice=mine["ms_per_invoice"])


if __name__ == "__main__":
    main(sys.argv[1:])
