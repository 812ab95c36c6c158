"""Plain-text accounting journals, Beancount and hledger: golden files
tests/golden/<format>/<case>.journal.csv + .company.toml (+ .opening.csv) -> <case>.out, each checked by the
format's own checker (`bean-check`, `hledger check --strict`); one test per refusal and for the file names.

`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review. A missing checker is a skip
locally and a failure under CI=true.
"""

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from destinations.exports import beancount, hledger
from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from schemas.company import load_company
from tests.destinations.ledger_cases import with_company, with_line

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FORMATS = {"beancount": beancount, "hledger": hledger}
CASES = [(fmt, p.name.removesuffix(".journal.csv")) for fmt in FORMATS
         for p in sorted((GOLDEN / fmt).glob("*.journal.csv"))]
MARCH = (date(2026, 3, 1), date(2026, 3, 31))
CHECKERS = {"beancount": ["bean-check"], "hledger": ["hledger", "check", "--strict", "ordereddates", "-f"]}
INSTALL = {"beancount": "pip install beancount (provides bean-check)", "hledger": "apt-get install hledger"}


def load_export(fmt: str, case: str = "hotel_march", *, opening: bool = True) -> LedgerExport:
    start, end = MARCH
    opening_csv = GOLDEN / fmt / f"{case}.opening.csv"
    return LedgerExport(load_company(GOLDEN / fmt / f"{case}.company.toml"), start, end,
                        read_journal(GOLDEN / fmt / f"{case}.journal.csv", start, end),
                        read_opening(opening_csv if opening and opening_csv.exists() else None), generated_at(end))






def with_opening_account(export: LedgerExport, old: str, new: str) -> LedgerExport:
    opening = export.opening.with_columns(pl.col("account").replace(old, new))
    return LedgerExport(export.company, export.period_start, export.period_end, export.journal, opening,
                        export.generated_at)


def text_of(fmt: str, export: LedgerExport) -> str:
    [(_, content)] = FORMATS[fmt].write(export)
    return content.decode("utf-8")


TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "bin"  # where `make test` installs bean-check


def run_checker(fmt: str, path: Path) -> None:
    command = list(CHECKERS[fmt])
    if shutil.which(command[0]) is None and (TOOLS / command[0]).exists():
        command[0] = str(TOOLS / command[0])
    if shutil.which(command[0]) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{command[0]} is missing: CI must install it ({INSTALL[fmt]})")
        pytest.skip(f"{command[0]} is not on PATH ({INSTALL[fmt]})")
    result = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("fmt", "case"), CASES)
def test_golden_plaintext(fmt, case, tmp_path):
    [(name, content)] = FORMATS[fmt].write(load_export(fmt, case))
    golden = GOLDEN / fmt / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        golden.write_bytes(content)
    assert golden.read_bytes() == content, f"{fmt}/{golden.name} differs; run `make golden` and review the diff"
    written = tmp_path / name
    written.write_bytes(content)
    run_checker(fmt, written)


@pytest.mark.parametrize("fmt", FORMATS)
def test_journal_without_opening_balances_passes_the_checker(fmt, tmp_path):
    [(name, content)] = FORMATS[fmt].write(load_export(fmt, opening=False))
    assert b"Opening" not in content
    (tmp_path / name).write_bytes(content)
    run_checker(fmt, tmp_path / name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_export_gives_the_same_bytes(fmt):
    assert FORMATS[fmt].write(load_export(fmt)) == FORMATS[fmt].write(load_export(fmt))


def test_file_names_are_the_company_name_in_ascii_and_the_period():
    assert beancount.file_name(load_export("beancount")) == "Hotel-du-Lac-SARL-2026-03-01_2026-03-31.beancount"
    assert hledger.file_name(load_export("hledger")) == "Hotel-du-Lac-SARL-2026-03-01_2026-03-31.journal"
    assert beancount.file_name(with_company(load_export("beancount"), name="Ågren & Søn")) == \
        "Agren-Son-2026-03-01_2026-03-31.beancount"
    assert hledger.file_name(with_company(load_export("hledger"), name="«»")) == \
        "company-2026-03-01_2026-03-31.journal"


# Beancount


def test_beancount_names_accounts_by_chart_type_number_and_ascii_name():
    text = text_of("beancount", load_export("beancount"))
    assert "2026-02-28 open Income:706100-Hebergement" in text
    assert "2026-02-28 open Liabilities:445712-TVA-collectee-10" in text
    assert "2026-02-28 open Equity:101300-Capital-souscrit-appele-verse" in text
    assert "999999" not in text


def test_beancount_header_has_title_and_operating_currency():
    lines = text_of("beancount", load_export("beancount")).splitlines()
    assert 'option "title" "Hôtel du Lac SARL"' in lines and 'option "operating_currency" "EUR"' in lines


def test_beancount_opens_accounts_on_the_first_day_without_opening_balances():
    text = text_of("beancount", load_export("beancount", opening=False))
    assert "2026-03-01 open Assets:411000-Clients" in text and "2026-02-28" not in text


def test_beancount_opening_balances_post_the_difference_to_equity_the_day_before():
    text = text_of("beancount", load_export("beancount"))
    block = text[text.index('2026-02-28 * "Opening balances"'):].split("\n\n")[0].splitlines()
    assert [line.split() for line in block[1:]] == [
        ["Assets:512000-Banque-Credit-Agricole", "8000.00", "EUR"], ["Assets:411000-Clients", "1200.00", "EUR"],
        ["Equity:101300-Capital-souscrit-appele-verse", "-8000.00", "EUR"],
        ["Equity:Opening-Balances", "-1200.00", "EUR"]]


def test_beancount_transaction_carries_payee_narration_and_ids_as_metadata():
    text = text_of("beancount", load_export("beancount"))
    assert ('2026-03-14 * "Müller GmbH" "Séjour Müller chambre 12"\n  entry_id: "F-1042"\n  journal_code: "VE"\n'
            '  document_ref: "F-1042"\n  Assets:411000-Clients                     1100.00 EUR\n') in text
    assert '2026-03-31 * "Commission carte \\"Nets\\" mars"\n' in text


def test_beancount_refuses_an_account_missing_from_the_chart():
    export = with_line(load_export("beancount"), "B-0331", "627000", account="627800")
    with pytest.raises(ExportRefused, match=r"entry B-0331, field account: '627800' is not in COMPANY.toml"):
        beancount.write(export)


def test_beancount_refuses_an_opening_balance_on_an_account_missing_from_the_chart():
    export = with_opening_account(load_export("beancount"), "512000", "512100")
    with pytest.raises(ExportRefused, match=r"opening balance of account 512100, field account: '512100'"):
        beancount.write(export)


def test_beancount_refuses_an_account_number_that_cannot_be_a_component():
    export = load_export("beancount")
    accounts = [{**a.model_dump(), "number": "627.0"} if a.number == "627000" else a.model_dump()
                for a in export.company.accounts]
    export = with_line(with_company(export, accounts=accounts), "B-0331", "627000", account="627.0")
    with pytest.raises(ExportRefused, match=r"entry B-0331, field account: '627.0' cannot start a Beancount"):
        beancount.write(export)


def test_beancount_refuses_a_company_currency_that_is_not_a_commodity():
    with pytest.raises(ExportRefused, match=r"COMPANY.toml key currency: '€' is not a Beancount commodity"):
        beancount.write(with_company(load_export("beancount"), currency="€"))


def test_beancount_refuses_a_line_break_in_a_text():
    export = with_line(load_export("beancount"), "F-1042", "411000", partner_name="Müller\nGmbH")
    with pytest.raises(ExportRefused, match=r"entry F-1042, field partner_name: 'Müller\\nGmbH' holds a line"):
        beancount.write(export)


# hledger


def test_hledger_declares_each_account_used_with_its_type():
    lines = text_of("hledger", load_export("hledger")).splitlines()
    assert [line for line in lines if line.startswith("account ")] == [
        "account assets:411000 Clients  ; type: A", "account assets:512000 Banque Crédit Agricole  ; type: A",
        "account equity:101300 Capital souscrit - appelé, versé  ; type: E",
        "account equity:Opening balances  ; type: E",
        "account expenses:627000 Services bancaires & assimilés  ; type: X",
        "account income:706100 Hébergement  ; type: R", "account liabilities:445712 TVA collectée 10 %  ; type: L"]
    assert "commodity 1000.00 EUR" in lines and "decimal-mark ." in lines


def test_hledger_transaction_has_payee_note_and_ids_as_tags():
    lines = text_of("hledger", load_export("hledger")).splitlines()
    assert ("2026-03-14 * Müller GmbH | Séjour Müller chambre 12  ; entry_id: F-1042, journal_code: VE, "
            "document_ref: F-1042") in lines
    assert "    income:706100 Hébergement                  -1000.00 EUR  ; Hébergement 2 nuits, vat_code: V10" in lines
    assert "2026-03-31 * Commission carte \"Nets\" mars  ; entry_id: B-0331, journal_code: BQ" in lines


def test_hledger_opening_balances_post_the_difference_to_equity_the_day_before():
    text = text_of("hledger", load_export("hledger"))
    block = text[text.index("2026-02-28 * Opening balances"):].split("\n\n")[0].splitlines()
    assert block[-1].split() == ["equity:Opening", "balances", "-1200.00", "EUR"]


def test_hledger_refuses_an_account_missing_from_the_chart():
    export = with_line(load_export("hledger"), "F-1042", "706100", account="706200")
    with pytest.raises(ExportRefused, match=r"entry F-1042, field account: '706200' is not in COMPANY.toml"):
        hledger.write(export)


def test_hledger_refuses_an_opening_balance_on_an_account_missing_from_the_chart():
    export = with_opening_account(load_export("hledger"), "101300", "101000")
    with pytest.raises(ExportRefused, match=r"opening balance of account 101000, field account: '101000'"):
        hledger.write(export)


def test_hledger_refuses_a_semicolon_in_the_description():
    export = with_line(load_export("hledger"), "B-0331", "627000", description="Commission; mars")
    with pytest.raises(ExportRefused, match=r"entry B-0331, field description: 'Commission; mars' holds ';'"):
        hledger.write(export)


def test_hledger_refuses_a_comma_in_a_tag_value():
    export = with_line(load_export("hledger"), "B-0320", "512000", document_ref="REL-03,04")
    with pytest.raises(ExportRefused, match=r"entry B-0320, field document_ref: 'REL-03,04' holds ','"):
        hledger.write(export)


def test_hledger_refuses_a_line_break_in_a_text():
    export = with_line(load_export("hledger"), "F-1042", "706100", description="Hébergement\r\n2 nuits")
    with pytest.raises(ExportRefused, match=r"entry F-1042, field description: .* holds a line break"):
        hledger.write(export)


def test_hledger_refuses_a_company_currency_that_is_not_a_plain_commodity():
    with pytest.raises(ExportRefused, match=r"COMPANY.toml key currency: currency 'EUR1' is not a plain hledger"):
        hledger.write(with_company(load_export("hledger"), currency="EUR1"))
