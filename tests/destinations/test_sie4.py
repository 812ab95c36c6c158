"""SIE 4 (4E): golden files tests/golden/sie4/<case>.journal.csv + .company.toml (+ .opening.csv) -> <case>.out,
each checked by the offline validator; one test per refusal and for the file name.

`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review.
"""

import os
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from destinations.exports import ledger_format, sie4
from destinations.exports.ledger import ExportRefused, LedgerExport
from tests.destinations.ledger_cases import golden_export, with_company, with_line

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "sie4"
CASES = sorted(p.name.removesuffix(".journal.csv") for p in GOLDEN.glob("*.journal.csv"))
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def load_export(case: str, start: date = MARCH[0], end: date = MARCH[1]) -> LedgerExport:
    return golden_export(GOLDEN, case, start, end)






def records(export: LedgerExport) -> list[str]:
    [(_, content)] = sie4.write(export)
    return content.decode("cp437").splitlines()


@pytest.mark.parametrize("case", CASES)
def test_golden_sie4(case, tmp_path, shared_dir):
    [(name, content)] = sie4.write(load_export(case))
    golden = GOLDEN / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        golden.write_bytes(content)
    assert golden.read_bytes() == content, f"{golden.name} differs; run `make golden` and review the diff"
    written = tmp_path / name
    written.write_bytes(content)
    result = subprocess.run([shared_dir / "validators" / "validate", "sie4", str(written)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout, result.stdout


def test_registered_as_the_sie4_format():
    assert ledger_format("sie4") is sie4 and sie4.NAME == "sie4"


def test_file_starts_with_the_flag_and_is_code_page_437():
    [(_, content)] = sie4.write(load_export("hotel_march"))
    lines = content.decode("cp437").splitlines()
    assert lines[:3] == ["#FLAGGA 0", '#PROGRAM "ledgerflow" 1.0', "#FORMAT PC8"]
    assert '#FNAMN "Hotell Ågren AB"' in lines and "Ågren".encode("cp437") in content
    assert content.endswith(b"\r\n")


def test_header_names_the_company_fiscal_year_and_generation_date():
    lines = records(load_export("hotel_march"))
    assert {"#GEN 20260331", "#SIETYP 4", '#ORGNR "556677-8899"', "#RAR 0 20260101 20261231",
            '#KPTYP "BAS2014"', '#VALUTA "SEK"'} <= set(lines)


def test_declares_only_the_accounts_used_with_their_type():
    lines = records(load_export("hotel_march"))
    konto = [line for line in lines if line.startswith(("#KONTO", "#KTYP", "#SRU"))]
    assert '#KONTO 2081 "Aktiekapital"' in konto and "#KTYP 2081 S" in konto and "#KTYP 3010 I" in konto
    assert "#SRU 1930 \"7281\"" in konto
    assert not any("9999" in line for line in konto)


def test_opening_balances_are_signed_debit_minus_credit():
    lines = records(load_export("hotel_march"))
    assert [line for line in lines if line.startswith("#IB")] == ["#IB 0 1930 50000.00", "#IB 0 2081 -50000.00"]


def test_each_journal_is_a_verification_series_numbered_in_date_order():
    lines = records(load_export("hotel_march"))
    assert [line.split(" ")[1:4] for line in lines if line.startswith("#VER")] == [
        ["A", "1", "20260314"], ["B", "1", "20260320"], ["B", "2", "20260331"]]


def test_debits_are_positive_and_credits_negative():
    lines = records(load_export("hotel_march"))
    trans = [line.strip() for line in lines if line.strip().startswith("#TRANS")]
    assert trans[:3] == ["#TRANS 1510 {} 1120.00", '#TRANS 3010 {} -1000.00 "" "Logi 2 nätter"',
                         "#TRANS 2611 {} -120.00"]


def test_quotes_in_texts_are_escaped():
    assert '#VER B 2 20260331 "Kortavgift \\"Nets\\" mars"' in records(load_export("hotel_march"))


def test_file_name_is_organisation_number_and_period():
    export = load_export("hotel_march")
    assert sie4.file_name(export) == "556677-8899-2026-03-01_2026-03-31.se"
    unregistered = with_company(export, registration_id=None)
    assert sie4.file_name(unregistered) == "Hotell-Agren-AB-2026-03-01_2026-03-31.se"


def test_without_registration_id_there_is_no_orgnr_record():
    assert not any(line.startswith("#ORGNR") for line in records(with_company(load_export("hotel_march"),
                                                                                  registration_id=None)))


def test_refuses_an_account_missing_from_the_chart_naming_it():
    export = with_line(load_export("hotel_march"), "B-0331", "6570", account="6571")
    with pytest.raises(ExportRefused, match=r"entry B-0331: account 6571 is not in COMPANY.toml \[\[accounts\]\]"):
        sie4.write(export)


def test_refuses_an_opening_account_missing_from_the_chart():
    export = load_export("hotel_march")
    opening = export.opening.with_columns(pl.col("account").replace("2081", "2082"))
    export = LedgerExport(export.company, *MARCH, export.journal, opening, export.generated_at)
    with pytest.raises(ExportRefused, match="OPENING.csv: account 2082 is not in COMPANY.toml"):
        sie4.write(export)


def test_refuses_a_non_numeric_account():
    export = with_line(load_export("hotel_march"), "B-0331", "6570", account="BANK")
    with pytest.raises(ExportRefused, match="entry B-0331: account 'BANK': SIE 4 account numbers are digits only"):
        sie4.write(export)


def test_refuses_a_character_outside_code_page_437_naming_entry_and_field():
    export = with_line(load_export("hotel_march"), "B-0331", "6570", description="Avgift 25 €")
    with pytest.raises(ExportRefused, match="entry B-0331: description 'Avgift 25 €': character '€'"):
        sie4.write(export)


def test_refuses_a_company_name_outside_code_page_437_naming_the_key():
    with pytest.raises(ExportRefused, match="COMPANY.toml: name 'Łódź Hotel AB': character 'Ł'"):
        sie4.write(with_company(load_export("hotel_march"), name="Łódź Hotel AB"))


def test_refuses_a_line_break_inside_a_text():
    export = with_line(load_export("hotel_march"), "B-0331", "6570", description="Avgift\nmars")
    with pytest.raises(ExportRefused, match="entry B-0331: description .* control character"):
        sie4.write(export)


def test_refuses_a_journal_code_that_cannot_be_a_series():
    export = load_export("hotel_march")
    journal = export.journal.with_columns(pl.col("journal_code").replace("B", "BANK 2"))
    export = LedgerExport(export.company, *MARCH, journal, export.opening, export.generated_at)
    with pytest.raises(ExportRefused, match="entry B-0320: journal_code 'BANK 2'"):
        sie4.write(export)


def test_refuses_a_line_in_another_currency():
    export = with_line(load_export("hotel_march"), "B-0331", "6570", currency="EUR")
    with pytest.raises(ExportRefused, match="entry B-0331: currency 'EUR' is not the company currency SEK"):
        sie4.write(export)


def test_refuses_a_period_past_the_end_of_the_fiscal_year():
    export = with_company(load_export("hotel_march"), fiscal_year_start="03-15")
    with pytest.raises(ExportRefused, match="runs past the end of the fiscal year 2025-03-15..2026-03-14"):
        sie4.write(export)


def test_same_export_gives_the_same_bytes():
    assert sie4.write(load_export("hotel_march")) == sie4.write(load_export("hotel_march"))
