"""SAF-T Financial Norway 1.30: golden files (tests/golden/saft-no/<case>.journal.csv + .company.toml
[+ .opening.csv] -> <case>.out), the offline validator on every output, and each refusal.

LEDGERFLOW_REGENERATE_GOLDEN=1 rewrites the .out files for review.
"""

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest

from destinations.exports import saft_no
from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from schemas.company import load_company

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "saft-no"
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
def test_golden_saft_no(case):
    content = rendered(saft_no.write(build(case)))
    out = GOLDEN / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        out.write_bytes(content)
    assert out.read_bytes() == content, f"{out.name} differs; regenerate and review the diff"


@pytest.mark.parametrize("case", CASES)
def test_golden_output_passes_the_saft_no_validator(case, shared_dir, tmp_path):
    for name, content in saft_no.write(build(case)):
        path = tmp_path / name
        path.write_bytes(content)
        result = subprocess.run([str(shared_dir / "validators" / "validate"), "saft-no", str(path)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr


def test_same_export_gives_the_same_bytes():
    assert saft_no.write(build("hotel")) == saft_no.write(build("hotel"))


def test_file_name_is_org_nr_and_creation_time():
    [(name, _)] = saft_no.write(build("hotel"))
    assert name == "SAF-T Financial_987654325_20260331000000_1_1.xml"


def company_without(key: str) -> str:
    lines = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith(f"{key} =")) + "\n"


def test_missing_contact_name_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ExportRefused, match="contact_name is missing"):
        saft_no.write(build("hotel", company_without("contact_name"), tmp_path))


def test_missing_registration_id_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ExportRefused, match="registration_id is missing"):
        saft_no.write(build("hotel", company_without("registration_id"), tmp_path))


def test_registration_id_that_is_no_org_nr_is_refused(tmp_path):
    text = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").replace('"987654325"', '"98765/4325"')
    with pytest.raises(ExportRefused, match="registration_id '98765/4325' is not a 9-digit"):
        saft_no.write(build("hotel", text, tmp_path))


def test_account_without_standard_account_is_refused_naming_it(tmp_path):
    text = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").replace(
        'standard_account = "7770"\n', "")
    with pytest.raises(ExportRefused, match="entry B-2002: account 7770: .*standard_account is missing"):
        saft_no.write(build("hotel", text, tmp_path))


def test_account_outside_the_chart_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("7770,", "7790,")
    with pytest.raises(ExportRefused, match="entry B-2002: account 7790 is not in COMPANY.toml"):
        saft_no.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_unknown_vat_code_is_refused_naming_entry_and_value(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace(",33,", ",99,")
    with pytest.raises(ExportRefused, match="entry S-1001: vat_code '99' is not in"):
        saft_no.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_partner_without_name_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("Müller Reisen GmbH", "")
    with pytest.raises(ExportRefused, match="entry S-1001: partner_id 'K100' has no partner_name"):
        saft_no.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_text_longer_than_the_xsd_allows_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("KID-42", "K" * 36)
    with pytest.raises(ExportRefused, match="entry B-2001: document_ref 'K+' has 36 characters; SAF-T NO allows 35"):
        saft_no.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_character_xml_cannot_carry_is_refused(tmp_path):
    journal = (GOLDEN / "hotel.journal.csv").read_text(encoding="utf-8").replace("Bankgebyr mars", "Bank\x01gebyr")
    with pytest.raises(ExportRefused, match=r"entry B-2002: description 'Bank\\x01gebyr' contains"):
        saft_no.write(build("hotel", tmp_path=tmp_path, journal_text=journal))


def test_invalid_standard_tax_code_is_refused(tmp_path):
    text = (GOLDEN / "hotel.company.toml").read_text(encoding="utf-8").replace(
        'standard_code = "33"', 'standard_code = "333"')
    with pytest.raises(ExportRefused, match=r"\[\[vat_codes\]\] 33: standard_code '333'"):
        saft_no.write(build("hotel", text, tmp_path))


def test_unbalanced_opening_is_refused(tmp_path):
    opening = tmp_path / "opening.csv"
    opening.write_text("account,opening_debit,opening_credit\n1920,100.00,0.00\n", encoding="utf-8")
    export = build("hotel")
    export = LedgerExport(export.company, START, END, export.journal, read_opening(opening), export.generated_at)
    with pytest.raises(ExportRefused, match="OPENING.csv: opening balances do not balance"):
        saft_no.write(export)
