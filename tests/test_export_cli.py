"""`ledgerflow export` as a user runs it (INTERFACES §3): what it writes and prints, and every
refusal (exit 2, nothing written). The first test starts the command as a subprocess; the others run
the same command in this process (a new interpreter costs a second or more per call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import ledgerflow, ledgerflow_here

HEADER = ("entry_id,journal_code,entry_date,account,account_name,partner_id,partner_name,description,debit,credit,"
          "currency,vat_code,document_ref\n")
SALE = ("E1,VT,2026-03-14,411000,Clients,C1,Nordic Travel AB,Facture FA-1,120.00,0.00,EUR,,FA-1\n"
        "E1,VT,2026-03-14,706100,Hébergement,,,Facture FA-1,0.00,100.00,EUR,V20,FA-1\n"
        "E1,VT,2026-03-14,445712,TVA collectée,,,Facture FA-1,0.00,20.00,EUR,V20,FA-1\n")
COMPANY = '''name = "Hôtel du Lac SARL"
vat_id = "FR40303265045"
registration_id = "303265045"
country = "FR"
currency = "EUR"
'''


@pytest.fixture
def files(tmp_path):
    (tmp_path / "company.toml").write_text(COMPANY, encoding="utf-8")
    return tmp_path


def export(folder: Path, journal: str, *extra: str, period: str = "2026-03-01..2026-03-31", fmt: str = "csv",
           run=ledgerflow_here):
    (folder / "journal.csv").write_text(HEADER + journal, encoding="utf-8")
    return run("export", fmt, "--journal", str(folder / "journal.csv"), "--company",
                      str(folder / "company.toml"), "--period", period, "--out", str(folder / "out"), *extra)


def test_csv_export_writes_the_journal_of_the_period_and_prints_its_path(files):
    done = export(files, SALE, run=ledgerflow)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path == files / "out" / "journal-2026-03-01_2026-03-31.csv"
    assert path.read_bytes().count(b"\r\n") == 4 and "Hébergement" in path.read_text(encoding="utf-8")


def test_a_rerun_writes_the_same_bytes(files):
    first = Path(export(files, SALE).stdout.strip()).read_bytes()
    assert Path(export(files, SALE).stdout.strip()).read_bytes() == first


@pytest.mark.parametrize(("journal", "message"), [
    (SALE.replace("0.00,20.00", "0.00,21.00"), "entry E1 does not balance"),
    (SALE.replace("2026-03-14", "2026-04-01"), "outside the period 2026-03-01..2026-03-31"),
    (SALE.replace("120.00,0.00", "120.00,5.00"), "exactly one of debit and credit"),
    (SALE.replace("120.00,0.00", "-120.00,0.00"), "non-negative"),
    (SALE.replace("120.00", "120.005"), "column debit"),
    (SALE.replace(",EUR,", ",USD,"), "is not the company currency EUR"),
    (SALE.replace("E1,VT,2026-03-14,445712", "E1,VT,2026-03-15,445712"), "more than one date"),
])
def test_a_journal_the_export_cannot_take_is_refused_and_nothing_written(files, journal, message):
    done = export(files, journal)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (files / "out").exists()


def test_an_unknown_format_or_a_bad_period_is_named(files):
    assert "'nope' is not an export format" in export(files, SALE, fmt="nope").stderr
    done = export(files, SALE, period="2026-03-31..2026-03-01")
    assert done.returncode == 2 and "--period" in done.stderr


def test_a_company_file_missing_a_required_key_is_named(files):
    (files / "company.toml").write_text(COMPANY.replace('currency = "EUR"\n', ""), encoding="utf-8")
    done = export(files, SALE)
    assert done.returncode == 2 and "currency" in done.stderr


GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = [("fec", "hotel_march"), ("sie4", "hotel_march"), ("datev", "hotel_month"), ("saft-no", "hotel"),
         ("xaf", "hotel")]


def month_of(journal: Path) -> str:
    import calendar
    import csv
    from datetime import date

    with journal.open(encoding="utf-8") as handle:
        first = min(date.fromisoformat(row["entry_date"]) for row in csv.DictReader(handle))
    last = calendar.monthrange(first.year, first.month)[1]
    return f"{first:%Y-%m}-01..{first:%Y-%m}-{last:02d}"


@pytest.mark.parametrize(("fmt", "case"), CASES)
def test_every_ledger_format_through_the_command_passes_its_validator(shared_dir, tmp_path, fmt, case, monkeypatch):
    import subprocess

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    journal = GOLDEN / fmt / f"{case}.journal.csv"
    opening = GOLDEN / fmt / f"{case}.opening.csv"
    done = ledgerflow_here("export", fmt, "--journal", str(journal), "--company", str(GOLDEN / fmt / f"{case}.company.toml"),
                      "--period", month_of(journal), "--out", str(tmp_path / "out"),
                      *(["--opening", str(opening)] if opening.exists() else []))
    assert done.returncode == 0, done.stderr
    (written,) = [Path(line) for line in done.stdout.splitlines()]
    checked = subprocess.run([str(shared_dir / "validators" / "validate"), fmt, str(written)], capture_output=True,
                             text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]


def test_an_import_template_is_a_format_too(files):
    done = export(files, SALE, fmt="template:xero-manual-journal")
    assert done.returncode == 0, done.stderr
    assert "*Narration" in Path(done.stdout.strip()).read_text(encoding="utf-8")
    unknown = export(files, SALE, fmt="template:nope")
    assert unknown.returncode == 2 and "xero-manual-journal" in unknown.stderr


@pytest.mark.parametrize("fmt", ["beancount", "hledger"])
def test_plain_text_journals_are_formats_of_the_command(tmp_path, fmt):
    case = GOLDEN / fmt / "hotel_march"
    done = ledgerflow_here("export", fmt, "--journal", f"{case}.journal.csv", "--company", f"{case}.company.toml",
                      "--period", "2026-03-01..2026-03-31", "--opening", f"{case}.opening.csv",
                      "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == (GOLDEN / fmt / "hotel_march.out").read_bytes()


def invoice_export(tmp_path: Path, fmt: str, invoices: Path, period: str = "2026-03-01..2026-03-31"):
    return ledgerflow_here("export", fmt, "--invoices", str(invoices), "--company", str(GOLDEN / "ubl" / "company.toml"),
                      "--period", period, "--out", str(tmp_path / "out"))


@pytest.mark.parametrize("fmt", ["ubl", "facturx"])
def test_e_invoices_are_written_one_file_per_invoice_and_pass_the_validator(shared_dir, tmp_path, fmt):
    import subprocess

    written = []
    for case in ("standard", "credit_note", "intra_community"):
        done = invoice_export(tmp_path, fmt, GOLDEN / "ubl" / f"{case}.invoices.csv")
        assert done.returncode == 0, done.stderr
        written += done.stdout.splitlines()
    assert sorted(Path(p).stem for p in written) == ["AV-2026-0007", "F-2026-0042", "F-2026-0043"]
    checked = subprocess.run([str(shared_dir / "validators" / "validate"), fmt, *written], capture_output=True,
                             text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]


def test_e_invoices_refused_leave_nothing_and_say_why(tmp_path):
    late = invoice_export(tmp_path, "ubl", GOLDEN / "ubl" / "standard.invoices.csv", period="2026-04-01..2026-04-30")
    assert late.returncode == 2 and "invoice F-2026-0042: issue_date 2026-03-14 is outside --period" in late.stderr
    bad = tmp_path / "bad.invoices.csv"
    bad.write_text((GOLDEN / "ubl" / "standard.invoices.csv").read_text(encoding="utf-8").replace(",PO-7781,", ",,"),
                   encoding="utf-8")
    refused = invoice_export(tmp_path, "ubl", bad)
    assert refused.returncode == 2 and "ubl: invoice F-2026-0042: buyer_reference is missing" in refused.stderr
    crossed = invoice_export(tmp_path, "fec", GOLDEN / "ubl" / "standard.invoices.csv")
    assert crossed.returncode == 2 and "reads --journal" in crossed.stderr
    assert not (tmp_path / "out").exists()
    both = ledgerflow_here("export", "ubl", "--company", "c.toml", "--period", "2026-03-01..2026-03-31", "--out", "o")
    assert both.returncode == 2 and "either --journal" in both.stderr
