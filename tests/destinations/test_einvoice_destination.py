"""E-invoice destinations: INVOICES.csv files dropped into the tenant's inbox become one UBL or
Factur-X file per invoice in the folder of its issue date's period, once; bad files are
quarantined, refused invoices wait, an exported invoice never changes."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from tests.hotel import Hotel

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ubl"
DAY = date(2026, 3, 14)


@pytest.fixture
def einvoicing(tmp_path):
    hotel = Hotel(tmp_path / "hotel", **{
        "destinations.peppol": {"type": "einvoices", "format": "ubl", "path": str(tmp_path / "peppol")},
        "destinations.facturx": {"type": "einvoices", "format": "facturx", "path": str(tmp_path / "facturx")}})
    yield hotel, tmp_path
    hotel.stop()


def drop(hotel: Hotel, source: Path, name: str | None = None, text: str | None = None) -> Path:
    inbox = hotel.tenant.inbox_path() / "invoices"
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    if text is None:
        shutil.copyfile(source, target)
    else:
        target.write_text(text, encoding="utf-8")
    return target


def test_dropped_invoices_are_published_once_per_destination_format(einvoicing, shared_dir):
    hotel, root = einvoicing
    drop(hotel, GOLDEN / "standard.invoices.csv")
    drop(hotel, GOLDEN / "intra_community.invoices.csv")  # issued on the 18th: waits for that day's close
    summary = hotel.close_day(DAY)
    assert summary.final_state().name == "Completed", summary.final_state().message
    xml, pdf = root / "peppol" / "2026-03-14" / "F-2026-0042.xml", root / "facturx" / "2026-03-14" / "F-2026-0042.pdf"
    assert xml.is_file() and pdf.read_bytes().startswith(b"%PDF-")
    assert not (root / "peppol" / "2026-03-18").exists()
    for kind, path in (("ubl", xml), ("facturx", pdf)):
        checked = subprocess.run([str(shared_dir / "validators" / "validate"), kind, str(path)], capture_output=True,
                                 text=True, timeout=300)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    logged = hotel.sql("SELECT system_id, object_id FROM export_log WHERE object_type = 'invoice' ORDER BY 1").rows()
    assert logged == [("facturx", "F-2026-0042"), ("peppol", "F-2026-0042")]

    before = xml.read_bytes()
    xml.unlink()
    again = hotel.close_day(DAY)  # a rerun restores the deleted file byte for byte and adds nothing
    assert xml.read_bytes() == before
    assert not [f for e in again.exports for f in e.files if f.new_batch]
    assert hotel.sql("SELECT count(*) FROM export_log WHERE object_type = 'invoice'").item() == 2


def test_an_invoice_that_arrives_late_goes_into_its_own_periods_folder(einvoicing):
    hotel, root = einvoicing
    hotel.close_day(DAY)
    drop(hotel, GOLDEN / "standard.invoices.csv")  # issued on the 14th, arriving after that close
    hotel.close_day(date(2026, 3, 15))
    assert (root / "peppol" / "2026-03-14" / "F-2026-0042.xml").is_file()


def test_a_bad_file_is_quarantined_with_its_reason_and_the_good_ones_go_on(einvoicing):
    hotel, root = einvoicing
    drop(hotel, GOLDEN / "standard.invoices.csv")
    bad = (GOLDEN / "standard.invoices.csv").read_text(encoding="utf-8").replace(",3,118.333,", ",three,118.333,")
    drop(hotel, GOLDEN / "standard.invoices.csv", name="broken.csv", text=bad.replace("F-2026-0042", "F-2026-0099"))
    state = hotel.close_day(DAY).final_state()
    assert state.name == "CompletedWithRejects"
    quarantine = hotel.tenant.inbox_path() / "quarantine"
    assert "broken.csv: line 2, column quantity: not a number" in (quarantine / "broken.csv.reason.txt").read_text()
    assert (root / "peppol" / "2026-03-14" / "F-2026-0042.xml").is_file()
    assert not list((root / "peppol").rglob("F-2026-0099*"))


def test_a_refused_invoice_waits_and_is_published_once_corrected(einvoicing):
    hotel, root = einvoicing
    text = (GOLDEN / "standard.invoices.csv").read_text(encoding="utf-8")
    drop(hotel, GOLDEN / "standard.invoices.csv", text=text.replace(",PO-7781,", ",,"))
    state = hotel.close_day(DAY).final_state()
    assert state.name == "CompletedWithWarnings"
    assert "peppol (ubl) refused invoice F-2026-0042: buyer_reference is missing" in state.message
    assert not (root / "peppol" / "2026-03-14").exists()
    assert (root / "facturx" / "2026-03-14" / "F-2026-0042.pdf").is_file()  # Factur-X needs no buyer reference

    pdf = (root / "facturx" / "2026-03-14" / "F-2026-0042.pdf").read_bytes()
    drop(hotel, GOLDEN / "standard.invoices.csv", name="corrected.csv")
    fixed = hotel.close_day(date(2026, 3, 15)).final_state()
    # Peppol takes the corrected version; Factur-X keeps what it sent, and the change is reported
    assert (root / "peppol" / "2026-03-14" / "F-2026-0042.xml").is_file()
    assert (root / "facturx" / "2026-03-14" / "F-2026-0042.pdf").read_bytes() == pdf
    assert fixed.name == "CompletedWithRejects" and "refused" not in fixed.message
    reason = hotel.sql("SELECT reason FROM rejects WHERE table_name = 'issued_invoice'").item()
    assert "changed after it was exported to facturx, which keep the version they received" in reason


def test_an_exported_invoice_never_changes(einvoicing):
    hotel, root = einvoicing
    drop(hotel, GOLDEN / "standard.invoices.csv")
    hotel.close_day(DAY)
    first = (root / "peppol" / "2026-03-14" / "F-2026-0042.xml").read_bytes()
    changed = (GOLDEN / "standard.invoices.csv").read_text(encoding="utf-8").replace(",3,118.333,", ",4,118.333,")
    drop(hotel, GOLDEN / "standard.invoices.csv", name="changed.csv", text=changed.replace(",355.00", ",473.33"))
    state = hotel.close_day(date(2026, 3, 15)).final_state()
    assert state.name == "CompletedWithRejects"
    reason = hotel.sql("SELECT reason FROM rejects WHERE table_name = 'issued_invoice'").item()
    assert "changed after it was exported to facturx, peppol" in reason and "credit note" in reason
    assert (root / "peppol" / "2026-03-14" / "F-2026-0042.xml").read_bytes() == first
