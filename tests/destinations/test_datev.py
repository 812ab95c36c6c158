"""DATEV EXTF Buchungsstapel: golden files tests/golden/datev/<case>.journal.csv + <case>.company.toml
-> <case>.out (the period is the calendar month of the journal's first entry), each checked by the offline
validator, and one test per refusal.

`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review.
"""

from __future__ import annotations

import calendar
import csv
import io
import os
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from destinations.exports import datev
from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from schemas.company import load_company

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "datev"
CASES = sorted(p.name.removesuffix(".journal.csv") for p in GOLDEN.glob("*.journal.csv"))
COLUMNS = "entry_id,journal_code,entry_date,account,account_name,partner_id,partner_name,description,debit,credit," \
          "currency,vat_code,document_ref"
SALE = """\
S1,SAL,2026-03-02,1400,Forderungen,,,Rechnung Müller,119.00,0.00,EUR,,RE-1
S1,SAL,2026-03-02,8400,Erlöse 19 %,,,Zimmer Müller,0.00,100.00,EUR,U19,RE-1
S1,SAL,2026-03-02,1776,USt 19 %,,,USt,0.00,19.00,EUR,,RE-1
"""
COMPANY = """\
name = "Hôtel Müller GmbH"
country = "DE"
currency = "EUR"
fiscal_year_start = "01-01"

[[vat_codes]]
code = "U19"
rate = "19.00"
account = "1776"
"""
DATEV_TABLE = """
[datev]
consultant_number = 1234567
client_number = 10001
account_length = 4
"""


@pytest.fixture(autouse=True)
def no_source_date_epoch(monkeypatch):
    """The golden header's 'Erzeugt am' is the period's end; SOURCE_DATE_EPOCH would move it."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def golden_export(case: str) -> LedgerExport:
    first = next(csv.DictReader(io.StringIO((GOLDEN / f"{case}.journal.csv").read_text(encoding="utf-8"))))
    day = date.fromisoformat(first["entry_date"])
    start, end = day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    company = load_company(GOLDEN / f"{case}.company.toml")
    return LedgerExport(company, start, end, read_journal(GOLDEN / f"{case}.journal.csv", start, end),
                        read_opening(None), generated_at(end))


def export_of(tmp_path: Path, journal: str, company: str = COMPANY + DATEV_TABLE,
              start: date = date(2026, 3, 1), end: date = date(2026, 3, 31)) -> LedgerExport:
    (tmp_path / "journal.csv").write_text(COLUMNS + "\n" + journal, encoding="utf-8")
    (tmp_path / "company.toml").write_text(company, encoding="utf-8")
    return LedgerExport(load_company(tmp_path / "company.toml"), start, end,
                        read_journal(tmp_path / "journal.csv", start, end), read_opening(None), generated_at(end))


def booking_rows(content: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(content.decode("cp1252"), newline=""), delimiter=";"))
    return [dict(zip(rows[1], row)) for row in rows[2:]]


@pytest.mark.parametrize("case", CASES)
def test_golden_datev(case):
    [(name, content)] = datev.write(golden_export(case))
    out = GOLDEN / f"{case}.out"  # one file: its exact bytes, no header line
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        out.write_bytes(content)
    assert name.startswith("EXTF_Buchungsstapel_")
    assert out.read_bytes() == content, f"{out.name} differs; run `make golden` and review the diff"


@pytest.mark.parametrize("case", CASES)
def test_golden_output_passes_the_datev_validator(case, shared_dir, tmp_path):
    [(name, content)] = datev.write(golden_export(case))
    (tmp_path / name).write_bytes(content)
    result = subprocess.run([str(shared_dir / "validators" / "validate"), "datev", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout, result.stdout


def test_same_export_gives_the_same_bytes():
    assert datev.write(golden_export("hotel_month")) == datev.write(golden_export("hotel_month"))


def test_file_name_is_extf_buchungsstapel_with_the_period():
    [(name, _)] = datev.write(golden_export("hotel_month"))
    assert name == "EXTF_Buchungsstapel_2026-03-01_2026-03-31.csv"
    assert datev.file_name(date(2025, 7, 1), date(2026, 6, 30)) == "EXTF_Buchungsstapel_2025-07-01_2026-06-30.csv"


def test_header_carries_consultant_client_fiscal_year_and_period():
    [(_, content)] = datev.write(golden_export("automatic_accounts"))
    header = next(csv.reader(io.StringIO(content.decode("cp1252")), delimiter=";"))
    assert len(header) == 31
    assert header[:5] == ["EXTF", "700", "21", "Buchungsstapel", "13"]
    assert header[5] == "20260131000000000"
    assert header[10:16] == ["1234567", "20002", "20250701", "4", "20260101", "20260131"]
    assert header[21] == "EUR" and header[26] == "03"


def test_file_is_windows_1252_with_crlf_and_125_columns():
    [(_, content)] = datev.write(golden_export("hotel_month"))
    assert "Ågren".encode("cp1252") in content and "Ågren".encode("utf-8") not in content
    assert content.count(b"\n") == content.count(b"\r\n") and content.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(content.decode("cp1252"), newline=""), delimiter=";"))
    assert {len(row) for row in rows[1:]} == {125}


def test_invoice_becomes_one_booking_per_line_against_the_receivable(tmp_path):
    rows = booking_rows(datev.write(export_of(tmp_path, SALE))[0][1])
    assert [(r["Konto"], r["Gegenkonto (ohne BU-Schlüssel)"], r["Soll/Haben-Kennzeichen"],
             r["Umsatz (ohne Soll/Haben-Kz)"]) for r in rows] == [("8400", "1400", "H", "100,00"),
                                                                 ("1776", "1400", "H", "19,00")]
    assert rows[0]["Belegdatum"] == "0203" and rows[0]["Belegfeld 1"] == "RE-1"
    assert rows[0]["Buchungstext"] == "Zimmer Müller" and rows[0]["WKZ Umsatz"] == "EUR"


def test_many_to_many_entry_is_paired_greedily_and_adds_up(tmp_path):
    journal = """\
L1,OD,2026-03-31,4120,Gehälter,,,Lohn,2000.00,0.00,EUR,,L-3
L1,OD,2026-03-31,4130,Soziales,,,SV,400.00,0.00,EUR,,L-3
L1,OD,2026-03-31,1200,Bank,,,Auszahlung,0.00,1500.00,EUR,,L-3
L1,OD,2026-03-31,1741,Verbindlichkeiten,,,Abzüge,0.00,900.00,EUR,,L-3
"""
    rows = booking_rows(datev.write(export_of(tmp_path, journal))[0][1])
    assert [(r["Konto"], r["Gegenkonto (ohne BU-Schlüssel)"], r["Soll/Haben-Kennzeichen"],
             r["Umsatz (ohne Soll/Haben-Kz)"]) for r in rows] == [("4120", "1200", "S", "1500,00"),
                                                                 ("4120", "1741", "S", "500,00"),
                                                                 ("4130", "1741", "S", "400,00")]


def test_automatic_account_is_exported_gross_without_the_vat_line(tmp_path):
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    rows = booking_rows(datev.write(export_of(tmp_path, SALE, company))[0][1])
    assert [(r["Konto"], r["Gegenkonto (ohne BU-Schlüssel)"], r["Soll/Haben-Kennzeichen"],
             r["Umsatz (ohne Soll/Haben-Kz)"], r["BU-Schlüssel"]) for r in rows] == [
        ("1400", "8400", "S", "119,00", "")]


def test_vat_shared_by_two_automatic_lines_is_split_to_the_cent(tmp_path):
    journal = """\
S1,SAL,2026-03-02,1400,Forderungen,,,Rechnung,3.57,0.00,EUR,,RE-1
S1,SAL,2026-03-02,8400,Erlöse,,,A,0.00,1.00,EUR,U19,RE-1
S1,SAL,2026-03-02,8400,Erlöse,,,B,0.00,1.00,EUR,U19,RE-1
S1,SAL,2026-03-02,8400,Erlöse,,,C,0.00,1.00,EUR,U19,RE-1
S1,SAL,2026-03-02,1776,USt,,,USt,0.00,0.57,EUR,,RE-1
"""
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    rows = booking_rows(datev.write(export_of(tmp_path, journal, company))[0][1])
    amounts = [Decimal(r["Umsatz (ohne Soll/Haben-Kz)"].replace(",", ".")) for r in rows]
    assert amounts == [Decimal("1.19"), Decimal("1.19"), Decimal("1.19")] and sum(amounts) == Decimal("3.57")


def test_long_buchungstext_is_cut_to_60_characters(tmp_path):
    text = "Übernachtung " + "x" * 80
    rows = booking_rows(datev.write(export_of(tmp_path, SALE.replace("Zimmer Müller", text)))[0][1])
    assert rows[0]["Buchungstext"] == text[:60]


def refusal(tmp_path, journal=SALE, company=COMPANY + DATEV_TABLE, **period) -> str:
    with pytest.raises(ExportRefused) as info:
        datev.write(export_of(tmp_path, journal, company, **period))
    return str(info.value)


def test_missing_datev_table_is_refused_naming_the_keys(tmp_path):
    message = refusal(tmp_path, company=COMPANY)
    assert "[datev]" in message and "datev.consultant_number" in message and "datev.client_number" in message


def test_period_across_two_fiscal_years_is_refused(tmp_path):
    message = refusal(tmp_path, start=date(2025, 12, 1), end=date(2026, 3, 31))
    assert "two fiscal years" in message and "2025-12-31" in message


def test_account_longer_than_account_length_is_refused(tmp_path):
    message = refusal(tmp_path, SALE.replace(",8400,", ",84000,"))
    assert "entry S1" in message and "84000" in message and "account_length = 4" in message


def test_account_with_letters_is_refused(tmp_path):
    message = refusal(tmp_path, SALE.replace(",1776,", ",17A6,"))
    assert "entry S1" in message and "'17A6'" in message


def test_character_outside_windows_1252_is_refused(tmp_path):
    message = refusal(tmp_path, SALE.replace("Zimmer Müller", "Zimmer Łukasz"))
    assert "entry S1" in message and "Buchungstext" in message and "U+0141" in message


def test_line_break_in_description_is_refused(tmp_path):
    message = refusal(tmp_path, SALE.replace("Zimmer Müller", '"Zimmer\nMüller"'))
    assert "entry S1" in message and "control character" in message


@pytest.mark.parametrize("document_ref", ["RE_2026.1", "R" * 37])
def test_document_ref_outside_belegfeld_1_rules_is_refused(tmp_path, document_ref):
    message = refusal(tmp_path, SALE.replace("RE-1", document_ref))
    assert "entry S1" in message and "Belegfeld 1" in message and document_ref in message


def test_foreign_currency_line_is_refused(tmp_path):
    message = refusal(tmp_path, SALE.replace("EUR", "CHF"))
    assert "entry S1" in message and "CHF" in message


def test_umsatz_above_ten_digits_is_refused(tmp_path):
    journal = SALE.replace("119.00", "12345678901.00").replace("100.00", "12345678882.00")
    message = refusal(tmp_path, journal)
    assert "entry S1" in message and "Umsatz" in message


def test_automatic_account_without_vat_code_is_refused(tmp_path):
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    message = refusal(tmp_path, SALE.replace(",EUR,U19,", ",EUR,,"), company)
    assert "entry S1" in message and "8400" in message and "no vat_code" in message


def test_automatic_account_with_unknown_vat_code_is_refused(tmp_path):
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    message = refusal(tmp_path, SALE.replace(",EUR,U19,", ",EUR,X9,"), company)
    assert "entry S1" in message and "'X9'" in message


def test_automatic_account_without_vat_line_is_refused(tmp_path):
    journal = "S1,SAL,2026-03-02,1400,Forderungen,,,Rechnung,100.00,0.00,EUR,,RE-1\n" \
              "S1,SAL,2026-03-02,8400,Erlöse,,,Zimmer,0.00,100.00,EUR,U19,RE-1\n"
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    message = refusal(tmp_path, journal, company)
    assert "entry S1" in message and "1776" in message


def test_vat_account_shared_with_a_non_automatic_account_is_refused(tmp_path):
    journal = SALE.replace("119.00", "238.00").replace("19.00,EUR", "38.00,EUR") + \
        "S1,SAL,2026-03-02,8401,Erlöse,,,Bar,0.00,100.00,EUR,U19,RE-1\n"
    company = COMPANY + DATEV_TABLE + 'automatic_accounts = ["8400"]\n'
    message = refusal(tmp_path, journal, company)
    assert "entry S1" in message and "8401" in message and "1776" in message
