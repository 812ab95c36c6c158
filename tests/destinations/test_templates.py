"""Import templates (``template:<name>``): golden files tests/golden/templates/<case>.journal.csv +
.company.toml -> <case>.<template>.out (a ``--- file name ---`` line, then the file's exact bytes),
one per built-in template and one for a company-defined template; one test per refusal.

No offline validator exists for these vendor layouts; each .out was checked by hand against the
layout documented at the URL in the template's description.
`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review.
"""

import os
import tomllib
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from destinations.exports.ledger import ExportRefused, LedgerExport, generated_at, read_journal, read_opening
from destinations.exports.templates import (
    TEMPLATES,
    Template,
    TemplateError,
    company_slug,
    template_from_mapping,
    write_template,
)
from schemas.company import load_company
from tests.destinations.ledger_cases import with_company

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "templates"
MARCH = (date(2026, 3, 1), date(2026, 3, 31))
GOLDEN_CASES = [("hotel_march", name) for name in TEMPLATES] + [("own_template", "hotel-pairs")]


def load_export(case: str) -> LedgerExport:
    start, end = MARCH
    return LedgerExport(load_company(GOLDEN / f"{case}.company.toml"), start, end,
                        read_journal(GOLDEN / f"{case}.journal.csv", start, end), read_opening(None),
                        generated_at(end))




def with_description(export: LedgerExport, entry_id: str, description: str) -> LedgerExport:
    journal = export.journal.with_columns(
        pl.when(pl.col("entry_id") == entry_id).then(pl.lit(description)).otherwise(pl.col("description"))
        .alias("description"))
    return LedgerExport(export.company, export.period_start, export.period_end, journal, export.opening,
                        export.generated_at)


@pytest.mark.parametrize(("case", "template"), GOLDEN_CASES)
def test_golden_template(case, template):
    files = write_template(template, load_export(case))
    content = b"".join(f"--- {name} ---\n".encode() + data for name, data in files)
    golden = GOLDEN / f"{case}.{template}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        golden.write_bytes(content)
    assert golden.read_bytes() == content, f"{golden.name} differs; run `make golden` and review the diff"


def test_every_built_in_template_names_its_documented_source():
    for name, template in TEMPLATES.items():
        assert "Source: https://" in template.description, name
        assert (GOLDEN / f"hotel_march.{name}.out").exists(), name


def test_sage_rows_are_journal_debits_and_credits_in_windows_1252():
    [(name, content)] = write_template("sage50-uk-audit-trail", load_export("hotel_march"))
    lines = content.decode("cp1252").split("\r\n")
    assert name == "sage50-audit-trail-2026-03-01_2026-03-31.csv"
    assert lines[1] == "JD,,411000,,14/03/2026,F2026-0042,Séjour ch. 12 Müller 3 nuits,1100.00,T9,0.00"
    assert "Ågren".encode("cp1252") in content


def test_company_template_comes_from_the_toml_table():
    export = load_export("own_template")
    table = tomllib.loads((GOLDEN / "own_template.company.toml").read_text(encoding="utf-8"))
    assert export.company.model_extra["templates"] == table["templates"]
    [(name, content)] = write_template("hotel-pairs", export)
    assert name == "hotel-du-lac-sarl-buchungen-2026-03-01.csv"
    assert content.decode("latin-1").splitlines()[1] == "2;6;31.03.2026;627000;512000;12,50;Frais de tenue de compte;EUR"


def test_company_template_overrides_the_built_in_of_the_same_name():
    export = load_export("hotel_march")
    own = {"columns": [{"header": "Konto", "value": "account"}], "file_name": "mine.csv"}
    export = with_company(export, templates={"xero-manual-journal": own})
    [(name, content)] = write_template("xero-manual-journal", export)
    assert name == "mine.csv"
    assert content.startswith(b"Konto\r\n411000\r\n")


def test_file_name_fills_start_end_and_company():
    template = template_from_mapping("t", {"columns": [{"value": "account"}], "header": False,
                                           "file_name": "{company}_{start}_{end}.txt"})
    assert template.file_name == "{company}_{start}_{end}.txt"
    assert company_slug("Hôtel du Lac SARL") == "hotel-du-lac-sarl"
    export = with_company(load_export("hotel_march"), templates={"t": template.model_dump()})
    assert write_template("t", export)[0][0] == "hotel-du-lac-sarl_2026-03-01_2026-03-31.txt"


@pytest.mark.parametrize(("mapping", "message"), [
    ({"columns": []}, "columns: List should have at least 1 item"),
    ({"columns": [{"header": "X", "value": "amount", "constant": "1"}]}, "give exactly one of value or constant"),
    ({"columns": [{"header": "X", "value": "ammount"}]}, "value 'ammount' is unknown"),
    ({"columns": [{"value": "account"}]}, "header = true but column(s) 1 have no header"),
    ({"columns": [{"header": "X", "value": "account"}], "encoding": "klingon"}, "encoding 'klingon' is unknown"),
    ({"columns": [{"header": "X", "value": "account"}], "date_format": "dd/mm/yyyy"}, "has no date directive"),
    ({"columns": [{"header": "X", "value": "account"}], "file_name": "{tenant}.csv"}, "unknown placeholder(s) tenant"),
    ({"columns": [{"header": "X", "value": "account"}], "separator": ";;"}, "separator: String should have at most"),
    ({"columns": [{"header": "X", "value": "account"}], "separator": ",", "decimal": ",", "quoting": "none"},
     "equals the separator"),
    ({"columns": [{"header": "X", "value": "line_number"}], "layout": "entry"}, "line_number has no meaning"),
    ({"columns": [{"header": "X", "value": "account"}], "thousands": "."}, "thousands: Extra inputs"),
])
def test_bad_template_definition_is_refused_naming_the_key(mapping, message):
    with pytest.raises(TemplateError) as refused:
        template_from_mapping("mine", mapping)
    assert "[templates.mine]" in str(refused.value)
    assert message in str(refused.value)


def test_bad_company_template_refuses_the_export():
    export = with_company(load_export("hotel_march"), templates={"mine": {"columns": [{"header": "X"}]}})
    with pytest.raises(ExportRefused, match=r"\[templates.mine\]: columns.0: Value error, give exactly one"):
        write_template("mine", export)


def test_character_outside_the_encoding_is_refused_naming_entry_and_field():
    export = with_description(load_export("hotel_march"), "BNK-0331", "Frais Dvořák")
    with pytest.raises(ExportRefused, match=r"entry BNK-0331, field description: character 'ř' .* cp1252"):
        write_template("sage50-uk-audit-trail", export)


def test_value_longer_than_the_documented_field_is_refused():
    export = with_description(load_export("hotel_march"), "BNK-0331", "x" * 61)
    with pytest.raises(ExportRefused, match=r"entry BNK-0331, field description: .* longer than 60"):
        write_template("sage50-uk-audit-trail", export)


def test_separator_inside_an_unquoted_value_is_refused():
    export = with_description(load_export("hotel_march"), "BNK-0331", "Frais\tmars")
    with pytest.raises(ExportRefused, match=r"entry BNK-0331, field description: .* '\\t'"):
        write_template("banana-double-entry", export)


def test_per_entry_layout_refuses_a_three_line_entry():
    own = tomllib.loads((GOLDEN / "own_template.company.toml").read_text(encoding="utf-8"))["templates"]
    export = with_company(load_export("hotel_march"), templates=own)
    with pytest.raises(ExportRefused, match=r"entry INV-2026-0042: has 3 lines; .* two lines"):
        write_template("hotel-pairs", export)


def test_required_value_missing_is_refused():
    export = with_company(load_export("hotel_march"), accounts=[])
    export = LedgerExport(export.company, export.period_start, export.period_end,
                          export.journal.with_columns(pl.lit(None, pl.String).alias("account_name")), export.opening,
                          export.generated_at)
    with pytest.raises(ExportRefused, match=r"entry INV-2026-0042, field account_name: empty"):
        write_template("quickbooks-online-au-journal", export)


def test_unknown_template_is_refused_listing_the_known_ones():
    with pytest.raises(ExportRefused) as refused:
        write_template("exact-online", load_export("own_template"))
    message = str(refused.value)
    assert "template 'exact-online' is unknown" in message
    for name in [*TEMPLATES, "hotel-pairs"]:
        assert name in message


def test_the_same_export_gives_the_same_bytes():
    export = load_export("hotel_march")
    assert all(write_template(name, export) == write_template(name, export) for name in TEMPLATES)


def test_built_in_templates_are_valid_definitions():
    for template in TEMPLATES.values():
        assert Template.model_validate(template.model_dump()) == template
