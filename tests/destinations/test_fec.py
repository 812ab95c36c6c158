"""FEC (A47 A-1 LPF): golden files tests/golden/fec/<case>.journal.csv + .company.toml -> <case>.out,
each checked by the offline validator; one test per refusal and for the file name.

`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review.
"""

import os
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from destinations.exports import fec, ledger_format
from destinations.exports.ledger import ExportRefused, LedgerExport
from tests.destinations.ledger_cases import golden_export, with_company, with_line

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "fec"
CASES = sorted(p.name.removesuffix(".journal.csv") for p in GOLDEN.glob("*.journal.csv"))
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def load_export(case: str, start: date = MARCH[0], end: date = MARCH[1]) -> LedgerExport:
    return golden_export(GOLDEN, case, start, end)






@pytest.mark.parametrize("case", CASES)
def test_golden_fec(case, tmp_path, shared_dir):
    [(name, content)] = fec.write(load_export(case))
    golden = GOLDEN / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        golden.write_bytes(content)
    assert golden.read_bytes() == content, f"{golden.name} differs; run `make golden` and review the diff"
    written = tmp_path / name
    written.write_bytes(content)
    result = subprocess.run([shared_dir / "validators" / "validate", "fec", str(written)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout, result.stdout


def test_registered_as_the_fec_format():
    assert ledger_format("fec") is fec and fec.NAME == "fec"


def test_file_is_iso_8859_15_with_the_18_legal_columns_tab_separated():
    [(_, content)] = fec.write(load_export("hotel_march"))
    text = content.decode("iso-8859-15")
    assert text.splitlines()[0].split("\t") == list(fec.COLUMNS)
    assert "Müller GmbH" in text and "Blanchisserie Ågren" in text
    assert all(len(line.split("\t")) == 18 for line in text.splitlines())
    assert content.endswith(b"\r\n")


def test_entries_are_numbered_per_journal_in_date_order():
    [(_, content)] = fec.write(load_export("hotel_march"))
    rows = [line.split("\t") for line in content.decode("iso-8859-15").splitlines()[1:]]
    assert [(r[0], r[2], r[3]) for r in rows if r[0] == "BNK"] == [
        ("BNK", "1", "20260320"), ("BNK", "1", "20260320"), ("BNK", "2", "20260331"), ("BNK", "2", "20260331")]


def test_customer_and_supplier_accounts_carry_the_partner_as_auxiliary_account():
    [(_, content)] = fec.write(load_export("hotel_march"))
    rows = [line.split("\t") for line in content.decode("iso-8859-15").splitlines()[1:]]
    aux = {(r[4], r[6], r[7]) for r in rows}
    assert ("411000", "C0007", "Müller GmbH") in aux and ("401000", "F0010", "Blanchisserie Ågren") in aux
    assert ("512000", "", "") in aux


def test_amounts_use_a_decimal_comma_and_both_columns_are_filled():
    [(_, content)] = fec.write(load_export("hotel_march"))
    last = content.decode("iso-8859-15").splitlines()[-1].split("\t")
    assert (last[11], last[12]) == ("0,00", "12,50")


def test_file_name_is_siren_fec_and_fiscal_year_closing_date():
    export = load_export("hotel_march")
    assert fec.file_name(export) == "303265045FEC20261231.txt"
    siret = with_company(export, registration_id="303 265 045 00011", fiscal_year_start="07-01")
    assert fec.file_name(siret) == "303265045FEC20260630.txt"


@pytest.mark.parametrize("registration_id", [None, "30326504", "FR303265045"])
def test_refuses_a_company_without_a_siren(registration_id):
    export = with_company(load_export("hotel_march"), registration_id=registration_id)
    with pytest.raises(ExportRefused, match="registration_id .*SIREN"):
        fec.write(export)


def test_refuses_a_period_past_the_fiscal_year_closing_date():
    export = with_company(load_export("hotel_march"), fiscal_year_start="03-15")
    with pytest.raises(ExportRefused, match="fiscal-year closing date 2026-03-14"):
        fec.write(export)


def test_refuses_a_company_not_keeping_its_books_in_euros():
    with pytest.raises(ExportRefused, match="currency 'CHF'"):
        fec.write(with_company(load_export("hotel_march"), currency="CHF"))


def test_refuses_a_line_in_another_currency_naming_the_entry():
    export = with_line(load_export("hotel_march"), "BNK-0331", "627000", currency="USD")
    with pytest.raises(ExportRefused, match="entry BNK-0331: currency 'USD'"):
        fec.write(export)


def test_refuses_a_journal_code_without_a_journal_name():
    export = load_export("hotel_march")
    journal = export.journal.with_columns(pl.col("journal_code").replace("PUR", "HOT"))
    export = LedgerExport(export.company, *MARCH, journal, export.opening, export.generated_at)
    with pytest.raises(ExportRefused, match=r"entry PUR-0311: journal_code 'HOT'.*\[fec\] journal_names"):
        fec.write(export)


def test_refuses_an_account_not_starting_with_three_digits():
    export = with_line(load_export("hotel_march"), "BNK-0331", "627000", account="BANKFEE")
    with pytest.raises(ExportRefused, match="entry BNK-0331: account 'BANKFEE'"):
        fec.write(export)


def test_refuses_an_account_without_a_name_anywhere():
    export = with_line(load_export("hotel_march"), "BNK-0331", "627000", account="627800")
    with pytest.raises(ExportRefused, match="entry BNK-0331: account 627800: no account_name"):
        fec.write(export)


def test_refuses_an_entry_without_any_description():
    export = with_line(load_export("hotel_march"), "BNK-0331", "627000", description=None)
    export = with_line(export, "BNK-0331", "512000", description=None)
    with pytest.raises(ExportRefused, match="entry BNK-0331: description is empty"):
        fec.write(export)


def test_refuses_a_partner_id_without_a_partner_name():
    export = with_line(load_export("hotel_march"), "BNK-0320", "411000", partner_name=None)
    with pytest.raises(ExportRefused, match="entry BNK-0320: account 411000: partner_name is empty"):
        fec.write(export)


def test_refuses_a_character_outside_iso_8859_15_naming_entry_and_field():
    export = with_line(load_export("hotel_march"), "BNK-0320", "411000", partner_name="Łódź Hotele")
    with pytest.raises(ExportRefused, match="entry BNK-0320: CompAuxLib 'Łódź Hotele': character 'Ł'"):
        fec.write(export)


def test_refuses_a_tab_inside_a_text_field():
    export = with_line(load_export("hotel_march"), "BNK-0331", "627000", description="Frais\tmars")
    with pytest.raises(ExportRefused, match="entry BNK-0331: EcritureLib .* tab or line break"):
        fec.write(export)


def test_same_export_gives_the_same_bytes():
    assert fec.write(load_export("hotel_march")) == fec.write(load_export("hotel_march"))


def test_amount_keeps_cents_exactly():
    assert fec._amount(Decimal("1234567.05")) == "1234567,05"


def test_refuses_journal_names_that_are_not_a_table():
    with pytest.raises(ExportRefused, match=r"\[fec\] journal_names"):
        fec.write(with_company(load_export("hotel_march"), fec={"journal_names": "Ventes"}))
