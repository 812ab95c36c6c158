"""Peppol BIS Billing 3.0 UBL: golden files (tests/golden/ubl/<case>.invoices.csv + company.toml ->
<case>.out), the offline validator (UBL XSD, CEN schematron, Peppol rules) on every output, and
each refusal naming the invoice, line and field.

LEDGERFLOW_REGENERATE_GOLDEN=1 rewrites the .out files for review.
"""

import os
import subprocess
from pathlib import Path

import pytest

from destinations.exports import ubl
from destinations.exports.invoices import read_invoices, totals
from destinations.exports.ledger import ExportRefused
from schemas.company import load_company
from sources.recon_csv import InputError

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ubl"
CASES = sorted(p.name.removesuffix(".invoices.csv") for p in GOLDEN.glob("*.invoices.csv"))
COMPANY = GOLDEN / "company.toml"
HEADER = ("invoice_number,issue_date,due_date,currency,buyer_reference,seller_endpoint_id,buyer_name,buyer_vat_id,"
          "buyer_country,buyer_endpoint_id,line_id,item_name,quantity,unit_price,vat_category,vat_rate,"
          "vat_exemption_reason,invoice_type,billing_reference\n")
GOOD = "F-1,2026-03-14,2026-04-13,EUR,PO-1,0009:30326504500017,Ågren,FR23552081317,FR,0009:55208131700015"


def invoices_from(tmp_path: Path, *rows: str) -> list:
    path = tmp_path / "invoices.csv"
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return read_invoices(path)


def written(invoices: list) -> list[tuple[str, bytes]]:
    return ubl.write_invoices(invoices, load_company(COMPANY))


def rendered(files: list[tuple[str, bytes]]) -> bytes:
    return b"".join(b"=== " + name.encode() + b"\n" + content for name, content in files)


@pytest.mark.parametrize("case", CASES)
def test_golden_ubl(case):
    content = rendered(written(read_invoices(GOLDEN / f"{case}.invoices.csv")))
    out = GOLDEN / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        out.write_bytes(content)
    assert out.read_bytes() == content, f"{out.name} differs; regenerate and review the diff"


def test_golden_output_passes_the_ubl_validator(shared_dir, tmp_path):
    paths = []
    for case in CASES:
        for name, content in written(read_invoices(GOLDEN / f"{case}.invoices.csv")):
            paths.append(tmp_path / name)
            paths[-1].write_bytes(content)
    result = subprocess.run([str(shared_dir / "validators" / "validate"), "ubl", *map(str, paths)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(paths)} files, 0 errors" in result.stdout


def test_totals_are_computed_per_vat_group_and_rounded_once():
    invoice, = read_invoices(GOLDEN / "standard.invoices.csv")
    total = totals(invoice)
    # 3 × 118.333 = 354.999 -> 355.00 at 10 %; 2 × 24.995 = 49.99 at 20 %
    assert [(g.category, str(g.rate), str(g.taxable), str(g.tax)) for g in total.groups] == [
        ("S", "10", "355.00", "35.50"), ("S", "20", "49.99", "10.00")]
    assert (str(total.net), str(total.tax), str(total.gross)) == ("404.99", "45.50", "450.49")


def test_intra_community_supply_gets_exemption_code_and_delivery_country():
    (_, content), = written(read_invoices(GOLDEN / "intra_community.invoices.csv"))
    text = content.decode()
    assert "<cbc:TaxExemptionReasonCode>VATEX-EU-IC</cbc:TaxExemptionReasonCode>" in text
    assert "<cac:DeliveryLocation>" in text and "<cbc:IdentificationCode>DE</cbc:IdentificationCode>" in text


def test_credit_note_is_a_creditnote_document_naming_the_invoice():
    (name, content), = written(read_invoices(GOLDEN / "credit_note.invoices.csv"))
    assert name == "AV-2026-0007.xml"
    assert b"<CreditNote xmlns=" in content and b"<cbc:CreditNoteTypeCode>381<" in content
    assert b"<cac:InvoiceDocumentReference>\n      <cbc:ID>F-2026-0042</cbc:ID>" in content


def test_same_invoices_give_the_same_bytes():
    invoices = read_invoices(GOLDEN / "standard.invoices.csv")
    assert written(invoices) == written(read_invoices(GOLDEN / "standard.invoices.csv"))


REFUSALS = {
    "no buyer reference": (GOOD.replace(",PO-1,", ",,") + ",1,Room,1,100,S,10,,,",
                           "invoice F-1: buyer_reference is missing"),
    "no buyer endpoint": (GOOD.replace(",0009:55208131700015", ",") + ",1,Room,1,100,S,10,,,",
                          "invoice F-1: buyer_endpoint_id is missing"),
    "bad endpoint": (GOOD.replace("0009:55208131700015", "55208131700015") + ",1,Room,1,100,S,10,,,",
                     "invoice F-1: buyer_endpoint_id '55208131700015' is not SCHEME:ID"),
    "unknown category": (GOOD + ",1,Room,1,100,X,10,,,", "invoice F-1, line 1: vat_category 'X' is not one of"),
    "exempt without reason": (GOOD + ",1,Room,1,100,E,0,,,",
                              "invoice F-1, line 1: vat_exemption_reason is missing; category E needs one"),
    "zero-rated with a rate": (GOOD + ",1,Room,1,100,Z,10,,,", "invoice F-1, line 1: vat_rate 10 must be 0"),
    "intra-community without buyer VAT id": (GOOD.replace("FR23552081317", "") + ",1,Room,1,100,K,0,,,",
                                             "invoice F-1, line 1: buyer_vat_id is missing; category K"),
    "credit note without invoice": (GOOD + ",1,Room,1,100,S,10,,381,",
                                    "invoice F-1: billing_reference is missing"),
    "invoice without due date": (GOOD.replace("2026-04-13", "") + ",1,Room,1,100,S,10,,,",
                                 "invoice F-1: due_date is missing"),
    "unknown type": (GOOD + ",1,Room,1,100,S,10,,384,", "invoice F-1: invoice_type '384' is neither 380"),
    "control character": (GOOD + ",1,Ro\x07om,1,100,S,10,,,", "invoice F-1: item_name"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_data_ubl_cannot_carry_is_refused_naming_invoice_and_field(case, tmp_path):
    row, message = REFUSALS[case]
    with pytest.raises(ExportRefused, match="^" + message.replace("(", r"\(").replace("?", r"\?")):
        written(invoices_from(tmp_path, row))


def test_one_bad_invoice_refuses_the_whole_batch(tmp_path):
    invoices = invoices_from(tmp_path, GOOD + ",1,Room,1,100,S,10,,,",
                             GOOD.replace("F-1", "F-2").replace(",PO-1,", ",,") + ",1,Room,1,100,S,10,,,")
    with pytest.raises(ExportRefused, match="invoice F-2: buyer_reference"):
        written(invoices)


INPUT_ERRORS = {
    "invoice columns disagree": ((GOOD + ",1,Room,1,100,S,10,,,", GOOD.replace(",PO-1,", ",PO-2,") + ",2,Spa,1,5,S,20,,,"),
                                 "line 3, column buyer_reference: invoice F-1 has 'PO-1' on line 2 but 'PO-2'"),
    "line twice": ((GOOD + ",1,Room,1,100,S,10,,,", GOOD + ",1,Spa,1,5,S,20,,,"),
                   "line 3, column line_id: invoice F-1 has line '1' twice"),
    "negative price": ((GOOD + ",1,Room,1,-100,S,10,,,",), "line 2, column unit_price: a price is not negative"),
    "quantity not a number": ((GOOD + ",1,Room,two,100,S,10,,,",), "line 2, column quantity: not a number"),
    "bad country": ((GOOD.replace(",FR,", ",France,") + ",1,Room,1,100,S,10,,,",),
                    "line 2, column buyer_country: not an ISO 3166-1 alpha-2 code"),
}


@pytest.mark.parametrize("case", INPUT_ERRORS)
def test_bad_invoices_csv_names_file_line_column_and_value(case, tmp_path):
    rows, message = INPUT_ERRORS[case]
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        invoices_from(tmp_path, *rows)


def test_line_net_when_given_must_match_quantity_times_price(tmp_path):
    path = tmp_path / "invoices.csv"
    path.write_text(HEADER.rstrip("\n") + ",line_net\n" + GOOD + ",1,Room,3,1.005,S,10,,,,3.00\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"column line_net: 3.00 is not quantity × unit_price = 3.02"):
        read_invoices(path)
