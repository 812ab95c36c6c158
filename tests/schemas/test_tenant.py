import tomllib

import pytest

from schemas.tenant import PACKAGED_TENANTS, ConfigError, load_tenant, parse_tenant

DEMO = PACKAGED_TENANTS / "demo.toml"


def demo_document() -> dict:
    return tomllib.loads(DEMO.read_text(encoding="utf-8"))


def problems(document: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_tenant(document, "tenants/demo.toml")
    return str(caught.value)


def test_demo_tenant_loads_by_id():
    tenant = load_tenant("demo")
    assert tenant.currency == "EUR"
    assert tenant.mapping.revenue["ROOM"].vat_code == "V10"


def test_unknown_account_names_file_key_and_value():
    document = demo_document()
    document["mapping"]["revenue"]["SPA"]["account"] = "7061"
    assert problems(document) == ("tenants/demo.toml: mapping.revenue.SPA.account: account 7061 is not in the "
                                  "chart ([[accounts]])")


def test_unknown_vat_code_in_mapping():
    document = demo_document()
    document["mapping"]["revenue"]["ROOM"]["vat_code"] = "V55"
    assert "mapping.revenue.ROOM.vat_code: VAT code V55 is not in [[vat_codes]]" in problems(document)


def test_misspelt_key_is_reported_not_ignored():
    document = demo_document()
    document["mapping"]["revnue"] = {}
    assert "mapping.revnue: is not a known key (typo?)" in problems(document)


@pytest.mark.parametrize("key, value, expected", [
    ("timezone", "Europe/Pariss", "timezone: 'Europe/Pariss' is not an IANA time zone"),
    ("currency", "EURO", "currency: 'EURO' is not an ISO 4217 currency code"),
    ("business_day_cutoff", "25:00", "business_day_cutoff"),
    ("fiscal_year_start", "13-01", "fiscal_year_start"),
])
def test_bad_settings_are_named(key, value, expected):
    document = demo_document()
    document[key] = value
    assert expected in problems(document)


def test_every_problem_is_reported_at_once():
    document = demo_document()
    document["mapping"]["suspense_account"] = "999999"
    document["mapping"]["payment_methods"]["CASH"]["account"] = "888888"
    document["accounts"].append(dict(document["accounts"][0]))
    message = problems(document)
    assert "mapping.suspense_account: account 999999" in message
    assert "mapping.payment_methods.CASH.account: account 888888" in message
    assert f"account {document['accounts'][0]['number']} is declared twice" in message


def test_a_category_cannot_be_revenue_and_tax():
    document = demo_document()
    document["mapping"]["taxes"]["ROOM"] = {"account": "467100"}
    assert "mapping.taxes.ROOM: ROOM is mapped both as revenue and as a tax" in problems(document)


def test_unknown_source_type_is_named():
    document = demo_document()
    document["sources"]["pms"]["type"] = "opera"
    assert "sources.pms" in problems(document)


def test_missing_tenant_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="tenant file not found"):
        load_tenant(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="none of"):
        load_tenant("no-such-tenant")


def test_broken_toml_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("id = \n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_tenant(path)


def test_the_tenant_is_the_company_file_of_the_export_formats_with_their_own_tables():
    document = demo_document()
    document["fec"] = {"journal_names": {"HT": "Hébergement"}}
    document["facturx"] = {"font": "/fonts/Company.ttf"}
    document["templates"] = {"mine": {"columns": []}}
    company = parse_tenant(document, "tenants/demo.toml").company()
    assert company.vat_id == "FR40303265045" and company.currency == "EUR"
    assert company.model_extra == {"fec": {"journal_names": {"HT": "Hébergement"}},
                                   "facturx": {"font": "/fonts/Company.ttf"}, "templates": {"mine": {"columns": []}}}


@pytest.mark.parametrize(("destination", "expected"), [
    ({"type": "files", "format": "nope", "path": "x"}, "format 'nope' is not a ledger export format"),
    ({"type": "csv", "format": "fec", "path": "x"}, "for format = 'fec' use type = 'files'"),
    ({"type": "einvoices", "format": "fec", "path": "x"}, "destinations.bad.format"),
    ({"type": "files", "format": "fec", "path": "x", "email": {"to": [], "sender": "a@b", "smtp_host": "h"}},
     "destinations.bad.email.to"),
])
def test_a_destination_the_exports_cannot_serve_is_named(destination, expected):
    document = demo_document()
    document["destinations"]["bad"] = destination
    assert expected in problems(document)
