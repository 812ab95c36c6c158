"""Factur-X EN 16931: golden embedded XML (tests/golden/ubl/*.invoices.csv and
tests/golden/facturx/*.invoices.csv, with tests/golden/ubl/company.toml -> tests/golden/facturx/<case>.out),
the offline validators on every PDF and XML, same bytes for the same input, the PDF/A parts read back
from our own bytes (fonts, output intent, page text), and each refusal.

LEDGERFLOW_REGENERATE_GOLDEN=1 rewrites the .out files for review.
"""

import os
import re
import subprocess
import zlib
from pathlib import Path

import pytest

from destinations.exports import facturx
from destinations.exports.invoices import ExportRefused, read_invoices, totals
from schemas.company import load_company

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
INPUTS = {p.name.removesuffix(".invoices.csv"): p
          for p in sorted([*(GOLDEN / "ubl").glob("*.invoices.csv"), *(GOLDEN / "facturx").glob("*.invoices.csv")])}
COMPANY = GOLDEN / "ubl" / "company.toml"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def export(case: str, csv_text: str | None = None, company_text: str | None = None, tmp_path: Path | None = None):
    csv_path, company_path = INPUTS[case], COMPANY
    if csv_text is not None:
        csv_path = tmp_path / "invoices.csv"
        csv_path.write_text(csv_text, encoding="utf-8")
    if company_text is not None:
        company_path = tmp_path / "company.toml"
        company_path.write_text(company_text, encoding="utf-8")
    return facturx.write_invoices(read_invoices(csv_path), load_company(company_path))


@pytest.fixture(scope="module", autouse=True)
def dejavu_fonts():
    """The default fonts (Debian's fonts-dejavu-core, which make test installs); absent is a skip
    locally and a failure in CI."""
    if not (DEJAVU / "DejaVuSans.ttf").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{DEJAVU} is missing: make test installs fonts-dejavu-core")
        pytest.skip(f"{DEJAVU}/DejaVuSans.ttf is missing (apt-get install fonts-dejavu-core)")


@pytest.fixture(scope="module")
def pdfs(dejavu_fonts) -> dict[str, list[tuple[str, bytes]]]:
    """Every case exported once (subsetting fonts costs ~0.2 s a file), dated by the issue date."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SOURCE_DATE_EPOCH", raising=False)
        return {case: export(case) for case in INPUTS}


# ---------------------------------------------------------------- reading our own PDF back


def objects(pdf: bytes) -> dict[int, bytes]:
    return {int(number): body for number, body in re.findall(rb"(?m)^(\d+) 0 obj\n(.*?)\nendobj\n", pdf, re.S)}


def stream(body: bytes) -> bytes:
    data = body.split(b"\nstream\n", 1)[1].rsplit(b"\nendstream", 1)[0]
    return zlib.decompress(data) if b"/FlateDecode" in body.split(b"\nstream\n", 1)[0] else data


def ref(body: bytes, key: bytes) -> int:
    return int(re.search(rb"/" + key + rb" (\d+) 0 R", body).group(1))


def embedded_xml(pdf: bytes) -> bytes:
    [body] = [body for body in objects(pdf).values() if b"/Type /EmbeddedFile" in body]
    return stream(body)


def shown_text(pdf: bytes) -> list[str]:
    """Each page's text, decoded through the fonts' ToUnicode CMaps."""
    objs = objects(pdf)
    pages = []
    for body in objs.values():
        if b"/Type /Page\n" not in body:
            continue
        unicode_maps = {}
        for resource, number in re.findall(rb"/(F\d) (\d+) 0 R", body):
            cmap = stream(objs[ref(objs[int(number)], b"ToUnicode")]).decode()
            unicode_maps[resource.decode()] = {int(cid, 16): bytes.fromhex(text).decode("utf-16-be")
                                               for cid, text in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", cmap)}
        content = stream(objs[ref(body, b"Contents")]).decode()
        runs = re.findall(r"/(F\d) [\d.]+ Tf [\d.]+ [\d.]+ Td <([0-9A-F]*)> Tj", content)
        pages.append("\n".join("".join(unicode_maps[font][int(hexed[i:i + 4], 16)] for i in range(0, len(hexed), 4))
                               for font, hexed in runs))
    return pages


# ---------------------------------------------------------------- golden XML and validators


def rendered(files: list[tuple[str, bytes]]) -> bytes:
    return b"".join(b"=== " + name.encode() + b"!factur-x.xml\n" + embedded_xml(content) for name, content in files)


@pytest.mark.parametrize("case", INPUTS)
def test_golden_embedded_xml(case, pdfs):
    content = rendered(pdfs[case])
    out = GOLDEN / "facturx" / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        out.write_bytes(content)
    assert out.read_bytes() == content, f"{out.name} differs; regenerate and review the diff"


def validate(shared_dir: Path, kind: str, paths: list[Path]) -> None:
    result = subprocess.run([str(shared_dir / "validators" / "validate"), kind, *map(str, paths)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", INPUTS)
def test_every_pdf_passes_the_facturx_validator(case, pdfs, shared_dir, tmp_path):
    paths = []
    for name, content in pdfs[case]:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(content)
    validate(shared_dir, "facturx", paths)


@pytest.mark.parametrize("case", INPUTS)
def test_embedded_xml_passes_the_cii_validator(case, pdfs, shared_dir, tmp_path):
    paths = []
    for name, content in pdfs[case]:
        paths.append(tmp_path / name.replace(".pdf", ".xml"))
        paths[-1].write_bytes(embedded_xml(content))
    validate(shared_dir, "cii", paths)


# ---------------------------------------------------------------- determinism


def test_same_invoices_give_the_same_bytes(pdfs, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert export("standard") == pdfs["standard"]


def test_dates_come_from_the_issue_date_without_source_date_epoch(pdfs):
    [(_, pdf)] = pdfs["standard"]
    assert b"/CreationDate (D:20260314000000+00'00')" in pdf
    assert b"<xmp:CreateDate>2026-03-14T00:00:00+00:00</xmp:CreateDate>" in pdf


def test_source_date_epoch_sets_every_date_and_keeps_the_bytes_stable(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1775001600")  # 2026-04-01 00:00:00 UTC
    first, second = export("standard"), export("standard")
    assert first == second
    [(_, pdf)] = first
    assert pdf.count(b"(D:20260401000000+00'00')") == 3  # CreationDate, ModDate, the embedded file's ModDate
    assert pdf.count(b"2026-04-01T00:00:00+00:00") == 3  # xmp:CreateDate, ModifyDate, MetadataDate


def test_file_name_is_the_invoice_number(pdfs):
    assert [name for name, _ in pdfs["standard"]] == ["F-2026-0042.pdf"]


# ---------------------------------------------------------------- PDF/A parts


def test_xref_table_points_at_every_object(pdfs):
    [(_, pdf)] = pdfs["standard"]
    assert pdf.startswith(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    entries = re.findall(rb"(\d{10}) 00000 n\r\n", pdf[xref:])
    assert len(entries) == len(objects(pdf))
    assert all(pdf[int(offset):].startswith(b"%d 0 obj\n" % number) for number, offset in enumerate(entries, 1))


def test_every_font_is_embedded_as_a_subset_with_unicode(pdfs):
    [(_, pdf)] = pdfs["standard"]
    objs = objects(pdf).values()
    fonts = [body for body in objs if b"/Subtype /Type0" in body]
    descriptors = [body for body in objs if b"/Type /FontDescriptor" in body]
    assert len(fonts) == 2 and all(b"/ToUnicode" in body and b"/Identity-H" in body for body in fonts)
    assert len(descriptors) == 2 and all(b"/FontFile2" in body for body in descriptors)
    assert all(re.search(rb"/FontName /[A-Z]{6}\+DejaVuSans", body) for body in descriptors)


def test_output_intent_is_srgb_with_a_generated_icc_profile(pdfs):
    [(_, pdf)] = pdfs["standard"]
    objs = objects(pdf)
    [catalog] = [body for body in objs.values() if b"/Type /Catalog" in body]
    assert b"/OutputIntents [<</Type /OutputIntent\n/S /GTS_PDFA1" in catalog
    profile_body = objs[ref(catalog, b"DestOutputProfile")]
    assert b"/N 3" in profile_body
    profile = stream(profile_body)
    assert int.from_bytes(profile[:4], "big") == len(profile)
    assert profile[12:24] == b"mntrRGB XYZ " and profile[36:40] == b"acsp" and profile[8] == 2
    tags = {profile[132 + 12 * i:136 + 12 * i] for i in range(int.from_bytes(profile[128:132], "big"))}
    assert tags == {b"desc", b"cprt", b"wtpt", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"}


def test_xml_is_an_associated_file_named_in_the_xmp(pdfs):
    [(_, pdf)] = pdfs["standard"]
    assert b"/F (factur-x.xml)\n/UF (factur-x.xml)" in pdf and b"/AFRelationship /Data" in pdf
    assert b"/Subtype /text#2Fxml" in pdf
    assert b"<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in pdf
    assert b"<pdfaid:part>3</pdfaid:part>" in pdf and b"<pdfaid:conformance>B</pdfaid:conformance>" in pdf


def test_page_shows_the_invoice_number_and_the_amount_due(pdfs):
    [(_, pdf)] = pdfs["standard"]
    [page] = shown_text(pdf)
    invoice = read_invoices(INPUTS["standard"])[0]
    assert "Invoice F-2026-0042" in page
    assert f"Amount due\n{totals(invoice).gross:,.2f} EUR" in page
    assert "Société Ågren & Fils" in page and "Accès spa" in page


def test_many_lines_flow_onto_more_pages_with_the_heading_repeated(pdfs):
    [(_, pdf)] = pdfs["many_lines"]
    pages = shown_text(pdf)
    assert len(pages) == 3
    assert all(page.startswith("Invoice F-2026-0100") or page.startswith("#\nItem") for page in pages)
    assert "page 3 of 3" in pages[-1] and "Amount due\n17,533.75 EUR" in pages[-1]


def test_font_can_be_chosen_in_company_toml(tmp_path):
    company = COMPANY.read_text(encoding="utf-8") + (
        f'\n[facturx]\nfont = "{DEJAVU / "DejaVuSerif.ttf"}"\nbold_font = "{DEJAVU / "DejaVuSerif-Bold.ttf"}"\n')
    [(_, pdf)] = export("standard", company_text=company, tmp_path=tmp_path)
    assert re.search(rb"/FontName /[A-Z]{6}\+DejaVuSerif\n", pdf)


# ---------------------------------------------------------------- refusals


def refused(case: str, tmp_path: Path, old: str, new: str) -> str:
    text = INPUTS[case].read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ExportRefused) as refusal:
        export(case, text.replace(old, new), tmp_path=tmp_path)
    return str(refusal.value)


def test_missing_due_date_is_refused(tmp_path):
    assert "invoice F-2026-0042: due_date is missing" in refused("standard", tmp_path, ",2026-04-13,", ",,")


def test_unknown_vat_category_is_refused(tmp_path):
    message = refused("standard", tmp_path, ",S,20,", ",X,20,")
    assert "invoice F-2026-0042, line 2: vat_category 'X' is not one of" in message


def test_intra_community_supply_without_buyer_vat_id_is_refused(tmp_path):
    message = refused("intra_community", tmp_path, ",DE123456789,", ",,")
    assert "invoice F-2026-0043, line 1: buyer_vat_id is missing; category K needs the buyer's VAT id" in message


def test_malformed_electronic_address_is_refused(tmp_path):
    message = refused("intra_community", tmp_path, "9930:DE123456789", "DE123456789")
    assert "invoice F-2026-0043: buyer_endpoint_id 'DE123456789' is not SCHEME:ID" in message


def test_credit_note_refers_to_the_invoice_it_credits_and_shows_the_amount_credited(pdfs):
    [(_, pdf)] = pdfs["credit_note"]
    xml = embedded_xml(pdf).decode()
    assert "<ram:TypeCode>381</ram:TypeCode>" in xml
    assert re.search(r"<ram:InvoiceReferencedDocument>\s*<ram:IssuerAssignedID>F-2026-0042<", xml)
    [page] = shown_text(pdf)
    assert "Credit note AV-2026-0007" in page and "Credits invoice\nF-2026-0042" in page
    assert "Amount credited\n130.16 EUR" in page


def test_character_the_font_lacks_is_refused_naming_invoice_and_field(tmp_path):
    message = refused("intra_community", tmp_path, "« Lac »", "« 湖 »")
    assert message.startswith("invoice F-2026-0043: line 1 item_name 'Couverts en argent « 湖 »' contains '湖' (U+6E56)")


def test_one_bad_invoice_refuses_the_whole_export(tmp_path):
    good = INPUTS["credit_note"].read_text(encoding="utf-8")
    bad = good.splitlines()[1].replace("AV-2026-0007", "AV-2026-0008").replace(",S,10", ",Q,10")
    with pytest.raises(ExportRefused, match="invoice AV-2026-0008, line 1: vat_category 'Q'"):
        export("credit_note", good + bad + "\n", tmp_path=tmp_path)


def test_missing_font_file_is_refused_naming_path_and_key(tmp_path):
    company = COMPANY.read_text(encoding="utf-8") + f'\n[facturx]\nbold_font = "{tmp_path}/missing.ttf"\n'
    with pytest.raises(ExportRefused) as refusal:
        export("standard", company_text=company, tmp_path=tmp_path)
    assert str(refusal.value).startswith(f"{tmp_path}/missing.ttf: font file is missing (COMPANY.toml [facturx] "
                                         "bold_font)")
