"""XML Auditfile Financieel 3.2: golden files (tests/golden/xaf/<case>.journal.csv + .company.toml
[+ .opening.csv] -> <case>.out), the offline validator on every output, and each refusal.

LEDGERFLOW_REGENERATE_GOLDEN=1 rewrites the .out files for review.
"""

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest

from destinations.exports import xaf
from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from schemas.company import load_company

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "xaf"
CASES = sorted(p.name.removesuffix(".journal.csv") for p in GOLDEN.glob("*.journal.csv"))
START, END = date(2026, 3, 1), date(2026, 3, 31)


def build(case: str, company_text: str | None = None, tmp_path: Path | None = None, journal_text: str | None = None):
    company_path, journal_path = GOLDEN / f"{case}.company.toml", GOLDEN / f"{case}.journal.csv"
    if company_text is not None:
        company_path = tmp_path / "company.toml"
        company_path.write_text(company_text, encoding="utf-8")
    if journal_text is not None:
        journal_path = tmp_path / "journal.csv"
        journal_path.write_text(journal_text, encoding="utf-8")
    opening = GOLDEN / f"{case}.opening.csv"
    return LedgerExport(load_company(company_path), START, END, read_journal(journal_path, START, END),
                        read_opening(opening if opening.exists() else None), generated_at(END))


def rendered(files: list[tuple[str, bytes]]) -> bytes:
    return b"".join(b"=== " + name.encode() + b"\n" + content for name, content in files)


@pytest.mark.parametrize("case", CASES)
def test_golden_xaf(case):
    content = rendered(xaf.write(build(case)))
    out = GOLDEN / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        out.write_bytes(content)
    assert out.read_bytes() == content, f"{out.name} differs; regenerate and review the diff"


@pytest.mark.parametrize("case", CASES)
def test_golden_output_passes_the_xaf_validator(case, shared_dir, tmp_path):
    for name, content in xaf.write(build(case)):
        path = tmp_path / name
        path.write_bytes(content)
        result = subprocess.run([str(shared_dir / "validators" / "validate"), "xaf", str(path)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr


def test_same_export_gives_the_same_bytes():
    assert xaf.write(build("hotel")) == xaf.write(build("hotel"))


def test_file_name_is_company_and_period():
    [(name, _)] = xaf.write(build("hotel"))
    assert name == "Hôtel_de_Vries_Müller_B.V_2026-03-01_2026-03-31.xaf"


def company_without(key: str) -> str:
    lines = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith(f"{key} =")) + "\n"


def test_missing_vat_id_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ExportRefused, match="vat_id is missing"):
        xaf.write(build("hotel", company_without("vat_id"), tmp_path))


def test_account_outside_the_chart_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("4600,", "4690,")
    with pytest.raises(ExportRefused, match="entry B-2002: account 4690 is not in COMPANY.toml"):
        xaf.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_unknown_vat_code_is_refused_naming_entry_and_value(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace(",L9,", ",H21,")
    with pytest.raises(ExportRefused, match="entry V-1001: vat_code 'H21' is not in"):
        xaf.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_partner_name_longer_than_50_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("Ågren Resor AB", "Å" * 51)
    with pytest.raises(ExportRefused, match="entry V-1001: partner_name 'Å+' has 51 characters; XAF 3.2 allows 50"):
        xaf.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_character_xml_cannot_carry_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("Bankkosten maart", "Bank\x0bkosten")
    with pytest.raises(ExportRefused, match=r"entry B-2002: description 'Bank\\x0bkosten' contains"):
        xaf.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_period_spanning_two_fiscal_years_is_refused(tmp_path):
    text = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").replace(
        'fiscal_year_start = "01-01"', 'fiscal_year_start = "03-15"')
    with pytest.raises(ExportRefused, match="spans two fiscal years"):
        xaf.write(build("hotel", text, tmp_path))


def test_periods_follow_a_fiscal_year_starting_in_july(tmp_path):
    text = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").replace(
        'fiscal_year_start = "01-01"', 'fiscal_year_start = "07-01"')
    [(_, content)] = xaf.write(build("hotel", text, tmp_path))
    assert b"<fiscalYear>2025/2026</fiscalYear>" in content
    assert b"<periodNumber>9</periodNumber>" in content


def test_unbalanced_opening_is_refused(tmp_path):
    opening = tmp_path / "opening.csv"
    opening.write_text("account,opening_debit,opening_credit\n1100,100.00,0.00\n", encoding="utf-8")
    export = build("hotel")
    export = LedgerExport(export.company, START, END, export.journal, read_opening(opening), export.generated_at)
    with pytest.raises(ExportRefused, match="OPENING.csv: opening balances do not balance"):
        xaf.write(export)
