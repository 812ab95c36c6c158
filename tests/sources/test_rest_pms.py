"""The generic REST PMS source: any PMS API described in the tenant file lands in the same raw
columns as the demo PMS, so staging gives the same sales lines and payments, exact to the cent;
bad configuration is refused at load time naming the key, bad records are rejected one by one."""

import json
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import tomli_w

from schemas.sources import REST_PMS_FIELDS
from schemas.tenant import PACKAGED_TENANTS, ConfigError, load_tenant, parse_tenant
from sources.demo_pms.generator import HotelSpec, generate
from sources.demo_pms.server import DemoPmsServer, PmsStore
from sources.extract import ExtractError, extract
from sources.records import ExtractReport
from sources.rest_pms import RecordMapper, param_time
from sources.rest_pms.fake import API_KEY, CLIENT_ID, CLIENT_SECRET, FolioCloudServer, FolioStore
from warehouse.db import opened, query
from warehouse.staging import stage_source

EXAMPLES = PACKAGED_TENANTS / "examples"
SPEC = HotelSpec(seed=11, timezone="Europe/Paris", history_start=date(2026, 3, 2), history_end=date(2026, 3, 5),
                 rooms=4)
CLOCK = datetime(2026, 3, 7, 6, tzinfo=UTC)
SINCE = datetime(2026, 2, 1, tzinfo=UTC)
KEY_ENV = "FOLIO_CLOUD_API_KEY"


# --- servers and tenants -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_pms():
    """The demo hotel's PMS, with two records a PMS should not send: an amount with three decimals
    and a time without an offset."""
    store = PmsStore.from_spec(SPEC)
    moment = datetime(2026, 3, 4, 19, tzinfo=UTC)
    bad = {"folio_id": "F1", "category": "FOOD", "quantity": 1, "amount": "12.00", "vat_rate": "10.00",
           "currency": "EUR", "status": "posted", "posted_at": moment.isoformat(), "updated_at": moment.isoformat()}
    store.add("charges", {**bad, "id": "ROUNDED?", "amount": "12.345"})
    store.add("charges", {**bad, "id": "NAIVE", "posted_at": "2026-03-04T20:00:00"})
    store.set_clock(CLOCK)
    with DemoPmsServer(store) as server:
        yield server


@pytest.fixture(scope="module")
def folio():
    store = FolioStore.from_demo(*generate(SPEC), timezone=SPEC.timezone)
    store.set_clock(CLOCK)
    with FolioCloudServer(store) as server:
        yield server


@pytest.fixture
def folio_store(folio):
    """The module's Folio Cloud, its knobs put back after each test."""
    yield folio.store
    folio.store.api_keys, folio.store.throttle, folio.store.token_uses = {API_KEY}, 0, None
    folio.store.tokens.clear()
    folio.store.requests.clear()


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.delenv("LEDGERFLOW_REST_PMS_BASE_URL", raising=False)


def tenant_file(tmp_path: Path, example: str, change=None, **pms):
    """An example tenant file with its data under tmp_path, [sources.pms] changed as given."""
    document = tomllib.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    document["data_dir"] = str(tmp_path / "data")
    document["sources"]["pms"].update(pms)
    if change:
        change(document["sources"]["pms"])
    path = tmp_path / f"{example}"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def demo_tenant(tmp_path: Path, url: str):
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document["data_dir"] = str(tmp_path / "data")
    document["sources"]["pms"].update(embedded=False, base_url=url)
    path = tmp_path / "demo.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def extract_and_stage(tenant, **window):
    result = extract(tenant, "pms", **(window or {"updated_since": SINCE}))
    with opened(tenant.duckdb_path()) as con:
        staged = stage_source(con, tenant, "pms", result.load_ids, run_id="test", now=CLOCK)
    return result, staged


def canonical(tenant, table: str) -> pl.DataFrame:
    key = "line_id" if table == "sales_line" else "payment_id"
    with opened(tenant.duckdb_path()) as con:
        return query(con, f"SELECT * FROM {table} ORDER BY {key}")


@pytest.fixture(scope="module")
def built_in(demo_pms, tmp_path_factory):
    """What the built-in demo_pms source stages from the same hotel: the reference."""
    tenant = demo_tenant(tmp_path_factory.mktemp("built-in"), demo_pms.url)
    _, staged = extract_and_stage(tenant)
    return {"rejects": findings(staged), **{table: canonical(tenant, table) for table in ("sales_line", "payment")}}


def findings(staged) -> list[tuple]:
    return sorted(staged.rejects.select("record_id", "column_name", "value", "reason").rows())


# --- configuration -----------------------------------------------------------------------------

def test_the_canonical_fields_are_the_raw_columns_staging_reads():
    from sources.demo_pms import _DECIMAL_FIELDS, _TEXT_FIELDS, _TIMES

    for table, fields in REST_PMS_FIELDS.items():
        assert set(fields) == {*_TEXT_FIELDS[table], *_DECIMAL_FIELDS[table], *_TIMES}


def test_api_key_names_are_refused_exactly_when_the_audit_log_would_not_redact_them():
    from schemas.sources import SECRET_NAME_PATTERN
    from sources.http_audit import SECRET_NAME

    assert SECRET_NAME.pattern == SECRET_NAME_PATTERN  # one pattern: the audit log's is the tenant file's


@pytest.mark.parametrize("paginator", [
    {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
    {"type": "page_number", "total_path": "meta.total_pages"},
    {"type": "page_number", "page_param": "p", "base_page": 0},
    {"type": "offset", "total_path": "total"},
    {"type": "header_link"},
    {"type": "json_link", "next_url_path": "links.next"},
])
def test_every_paginator_is_one_dlt_accepts(paginator):
    from dlt.sources.rest_api.config_setup import create_paginator

    from schemas.sources import RestPmsSource
    from sources.rest_pms import _paginator

    settings = load_tenant(EXAMPLES / "folio-cloud.toml").sources["pms"].model_dump()
    built = _paginator(RestPmsSource.model_validate({**settings, "paginator": paginator}))
    assert create_paginator(built) is not None and built["type"] == paginator["type"]


def test_an_end_parameter_asks_up_to_the_run_time():
    from sources.rest_pms import _endpoint

    settings = load_tenant(EXAMPLES / "folio-cloud.toml").sources["pms"]
    resource = settings.resources.charges.model_copy(update={"incremental": settings.resources.charges.incremental
                                                             .model_copy(update={"end_param": "updated_before"})})
    endpoint = _endpoint(settings, "charges", resource, updated_since=SINCE, posted_window=None, now=CLOCK)
    assert endpoint["incremental"]["end_param"] == "updated_before" and endpoint["incremental"]["end_value"] == CLOCK
    assert endpoint["params"] == {"per_page": 200}


@pytest.mark.parametrize("example", ["demo-pms-rest.toml", "folio-cloud.toml"])
def test_the_example_tenant_files_load(example):
    tenant = load_tenant(EXAMPLES / example)
    assert tenant.sources["pms"].type == "rest_pms"


def _broken(change) -> str:
    document = tomllib.loads((EXAMPLES / "folio-cloud.toml").read_text(encoding="utf-8"))
    change(document["sources"]["pms"])
    with pytest.raises(ConfigError) as caught:
        parse_tenant(document, "folio.toml")
    return str(caught.value)


def test_an_unknown_paginator_is_refused_naming_the_key():
    message = _broken(lambda pms: pms["paginator"].update(type="scroll"))
    assert "sources.pms" in message and "paginator" in message and "scroll" in message


def test_a_missing_field_mapping_is_refused_naming_the_field():
    message = _broken(lambda pms: pms["resources"]["charges"]["fields"].pop("amount"))
    assert "resources.charges" in message and "fields.amount is missing" in message


@pytest.mark.parametrize("change, words", [
    (lambda pms: pms["resources"]["payments"].update(path="https://evil.example/settlements"), "path"),
    (lambda pms: pms["resources"]["payments"].update(path="settlements?x=1"), "path"),
    (lambda pms: pms["resources"]["charges"]["fields"].update(amount="gross cents"), "fields.amount"),
    (lambda pms: pms["resources"]["charges"]["fields"].update(colour="paint"), "colour"),
    (lambda pms: pms["resources"]["charges"].update(amount_sclae=2), "amount_sclae"),
    (lambda pms: pms["resources"]["charges"]["values"].update(amount={"1": "2"}), "values.amount"),
    (lambda pms: pms["auth"].update(name="X-Secret-Header-Not", key_env="K"), None),  # redacted: accepted
    (lambda pms: pms["auth"].update(name="key"), "audit log"),
    (lambda pms: pms["auth"].update(key_env="not a variable"), "key_env"),
    (lambda pms: pms.update(timezone="Mars/Olympus"), "timezone"),
])
def test_a_bad_configuration_is_refused_naming_the_key(change, words):
    if words is None:
        document = tomllib.loads((EXAMPLES / "folio-cloud.toml").read_text(encoding="utf-8"))
        change(document["sources"]["pms"])
        parse_tenant(document, "folio.toml")
        return
    assert words in _broken(change)


# --- the demo PMS described as configuration ---------------------------------------------------

@pytest.fixture(scope="module")
def demo_rest(demo_pms, built_in, tmp_path_factory):
    """One extraction of the demo PMS through tenants/examples/demo-pms-rest.toml, its URL from the
    environment, a key in the query string and the HTTP audit log on."""
    root = tmp_path_factory.mktemp("demo-rest")
    auth = {"type": "api_key", "location": "query", "name": "api_key", "key_env": KEY_ENV}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, API_KEY)
        env.setenv("LEDGERFLOW_REST_PMS_BASE_URL", demo_pms.url)  # the demo PMS ignores the key
        env.setenv("LEDGERFLOW_HTTP_LOG", str(root / "http.jsonl"))
        tenant = tenant_file(root, "demo-pms-rest.toml", auth=auth)
        _, staged = extract_and_stage(tenant)
    return tenant, staged, (root / "http.jsonl").read_text()


def test_the_demo_pms_as_configuration_stages_what_the_built_in_source_stages(demo_rest, built_in):
    tenant, staged, _ = demo_rest
    assert staged.sales_lines > 50 and staged.payments > 10
    for table in ("sales_line", "payment"):
        assert canonical(tenant, table).equals(built_in[table]), table
    assert findings(staged) == built_in["rejects"]


def test_an_amount_with_three_decimals_or_a_naive_time_is_rejected_not_guessed(demo_rest):
    rejects = {(r[0], r[1]): r[2:] for r in findings(demo_rest[1])}
    assert rejects == {("NAIVE", "posted_at"): ("2026-03-04T20:00:00", "'2026-03-04T20:00:00' has no UTC offset"),
                       ("ROUNDED?", "amount"): ("12.345", "amount '12.345' has more than 2 decimals")}


def test_a_key_in_the_query_is_not_written_to_the_audit_log(demo_rest):
    log = demo_rest[2]
    assert API_KEY not in log and all("api_key=***" in json.loads(line)["url"] for line in log.splitlines())


# --- a differently shaped PMS ------------------------------------------------------------------

@pytest.fixture(scope="module")
def folio_run(folio, tmp_path_factory):
    """One extraction from Folio Cloud through tenants/examples/folio-cloud.toml: seven records a page,
    the first two requests answered 429, the HTTP audit log on."""
    root = tmp_path_factory.mktemp("folio")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, API_KEY)
        env.setenv("LEDGERFLOW_HTTP_LOG", str(root / "http.jsonl"))
        tenant = tenant_file(root, "folio-cloud.toml", base_url=folio.url, page_size=7)
        folio.store.throttle = 2
        result, staged = extract_and_stage(tenant)
    requests = list(folio.store.requests)
    folio.store.requests.clear()
    return tenant, result, staged, requests, (root / "http.jsonl").read_text()


def test_folio_cloud_stages_the_same_rows_exact_from_cents(folio_run, built_in):
    tenant, _, staged, _, _ = folio_run
    assert staged.rejects.is_empty()
    for table in ("sales_line", "payment"):
        assert canonical(tenant, table).equals(built_in[table]), table
    amounts = canonical(tenant, "payment").get_column("amount")
    assert amounts.dtype == pl.Decimal(18, 2) and amounts.sum() == built_in["payment"].get_column("amount").sum()


def test_pages_follow_each_other_until_the_last(folio_run, folio):
    _, result, _, requests, _ = folio_run
    pages = [int(params["page"]) for resource, params in requests if resource == "folio-items"]
    assert pages[2:] == list(range(1, len(pages) - 1)) and len(pages) > 5  # two 429s, then pages 1..n
    assert result.row_counts["charges"] == len(folio.store.current("folio-items"))


def test_a_429_is_waited_out_and_nothing_is_lost(folio_run, folio):
    _, result, _, requests, _ = folio_run
    assert folio.store.throttle == 0 and requests[0] == requests[2]  # the refused page asked again
    assert result.row_counts["payments"] == len(folio.store.current("settlements"))


def test_an_api_key_in_a_header_is_not_written_to_the_audit_log(folio_run):
    log = folio_run[4]
    assert API_KEY not in log and json.loads(log.splitlines()[0])["headers"]["X-Api-Key"] == "***"


def test_an_incremental_rerun_adds_nothing(folio_run, folio_store):
    tenant = folio_run[0]
    again = extract(tenant, "pms", updated_since=SINCE)
    assert again.rows == 0
    asked = {params["updated_after"] for resource, params in folio_store.requests}
    assert all(moment > "2026-03-0" for moment in asked)  # from the cursor, not from SINCE


def test_a_backfill_window_reads_what_was_posted_in_it(folio, folio_store, tmp_path):
    tenant = tenant_file(tmp_path, "folio-cloud.toml", base_url=folio.url)
    window = (datetime(2026, 3, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, 3, tzinfo=UTC))
    _, staged = extract_and_stage(tenant, posted_window=window)
    posted = canonical(tenant, "sales_line").get_column("posted_at")
    assert staged.sales_lines > 0 and posted.min() >= window[0] and posted.max() < window[1]
    assert {"booked_from", "booked_before"} <= set(folio_store.requests[0][1])
    assert "updated_after" not in folio_store.requests[0][1]


def test_expired_credentials_are_a_clear_error_naming_the_variable(folio, folio_store, tmp_path):
    tenant = tenant_file(tmp_path, "folio-cloud.toml", base_url=folio.url)
    folio_store.api_keys = set()  # revoked
    with pytest.raises(ExtractError, match=f"401.*renew {KEY_ENV}"):
        extract(tenant, "pms", updated_since=SINCE)
    assert len(folio_store.requests) == 1  # no retrying a refusal


def test_a_missing_secret_is_a_clear_error_before_any_call(folio, folio_store, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    tenant = tenant_file(tmp_path, "folio-cloud.toml", base_url=folio.url)
    with pytest.raises(ExtractError, match=f"{KEY_ENV} is not set"):
        extract(tenant, "pms", updated_since=SINCE)
    assert folio_store.requests == []


def test_a_backfill_without_window_parameters_is_a_clear_error(folio, folio_store, tmp_path):
    tenant = tenant_file(tmp_path, "folio-cloud.toml", lambda pms: pms["resources"]["charges"].pop("window"),
                         base_url=folio.url)
    with pytest.raises(ExtractError, match="resources.charges has no window"):
        extract(tenant, "pms", posted_window=(SINCE, CLOCK))


# --- secrets in the HTTP audit log -------------------------------------------------------------

def _audit(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(log))
    return log


def _oauth2(folio, env, secret=CLIENT_SECRET) -> dict:
    env.setenv("FC_CLIENT_ID", CLIENT_ID)
    env.setenv("FC_CLIENT_SECRET", secret)
    return {"type": "oauth2", "token_url": folio.url.removesuffix("/v2") + "/oauth/token",
            "client_id_env": "FC_CLIENT_ID", "client_secret_env": "FC_CLIENT_SECRET"}


@pytest.fixture(scope="module")
def oauth2_run(folio, tmp_path_factory):
    """One extraction signed in with OAuth 2.0 client credentials, whose access tokens stop working
    after three requests (long before their expires_in), the HTTP audit log on."""
    root = tmp_path_factory.mktemp("oauth2")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEDGERFLOW_HTTP_LOG", str(root / "http.jsonl"))
        auth = {**_oauth2(folio, env), "scopes": ["read", "folios"]}
        tenant = tenant_file(root, "folio-cloud.toml", base_url=folio.url, page_size=20, auth=auth)
        folio.store.token_uses = 3
        try:
            result = extract(tenant, "pms", updated_since=SINCE)
        finally:
            folio.store.token_uses = None
    requests, tokens = list(folio.store.requests), set(folio.store.tokens)
    folio.store.requests.clear()
    return result, requests, tokens, (root / "http.jsonl").read_text()


def test_oauth2_client_credentials_sign_in_and_stay_out_of_the_audit_log(oauth2_run):
    _, requests, tokens, log = oauth2_run
    asked = [params for resource, params in requests if resource == "token"]
    assert asked and all(params == {"grant_type": "client_credentials", "scope": "read folios"} for params in asked)
    assert CLIENT_SECRET not in log and not any(token in log for token in tokens)


def test_an_access_token_that_expires_early_is_renewed_once_and_the_request_repeated(oauth2_run, folio):
    result, requests, _, _ = oauth2_run
    listings = [r for r in requests if r[0] != "token"]
    assert len([r for r in requests if r[0] == "token"]) > 2
    assert len(listings) > len(set(map(str, listings)))  # refused pages asked again, not skipped
    assert result.row_counts["charges"] == len(folio.store.current("folio-items"))


def test_a_refused_client_secret_is_a_clear_error_naming_the_variables(folio, folio_store, tmp_path, monkeypatch):
    tenant = tenant_file(tmp_path, "folio-cloud.toml", base_url=folio.url,
                         auth=_oauth2(folio, monkeypatch, secret="wrong"))
    with pytest.raises(ExtractError, match="401 on POST /oauth/token.*renew .*FC_CLIENT_ID and FC_CLIENT_SECRET"):
        extract(tenant, "pms", updated_since=SINCE)


@pytest.mark.parametrize("auth, accepted", [
    ({"type": "bearer", "token_env": "FC_TOKEN"}, True),
    ({"type": "api_key", "key_env": KEY_ENV}, True),
    ({"type": "api_key", "key_env": KEY_ENV, "location": "query", "name": "apikey"}, False),
    ({"type": "basic", "username_env": "FC_USER", "password_env": "FC_PASSWORD"}, False),
])
def test_each_kind_of_credentials_signs_requests_and_stays_out_of_the_audit_log(auth, accepted, folio, folio_store,
                                                                               tmp_path, monkeypatch):
    from schemas.sources import RestPmsSource
    from sources.extract import _audited_session
    from sources.rest_pms import Credentials, CredentialsRefused

    folio_store.tokens["bearer-7f3a"] = None
    secrets = {"FC_TOKEN": "bearer-7f3a", KEY_ENV: API_KEY, "FC_USER": "night-audit", "FC_PASSWORD": "pa55-w0rd"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    log = _audit(tmp_path, monkeypatch)
    settings = load_tenant(EXAMPLES / "folio-cloud.toml").sources["pms"].model_dump()
    session = _audited_session()
    session.auth = Credentials(RestPmsSource.model_validate({**settings, "auth": auth}).auth, session)
    if accepted:
        assert session.get(f"{folio.url}/settlements").status_code == 200
    else:  # the fake knows only its header key and bearer tokens: a clear refusal
        with pytest.raises(CredentialsRefused, match="401 on GET /v2/settlements.*renew "):
            session.get(f"{folio.url}/settlements")
    text = log.read_text()
    assert text and not any(secret in text for secret in secrets.values() if secret != "night-audit")
    assert "***" in text


# --- mapping one record ------------------------------------------------------------------------

def mapper(example: str = "folio-cloud.toml", table: str = "charges", **changes) -> RecordMapper:
    settings = load_tenant(EXAMPLES / example).sources["pms"]
    timezone = changes.pop("timezone", settings.timezone)
    resource = getattr(settings.resources, table).model_copy(update=changes)
    return RecordMapper(table, resource, timezone, ExtractReport())


ITEM = {"item_id": 17, "folio": {"id": "F1", "reservation": {"number": "R9"}}, "article": {"code": "FB-BEV"},
        "qty": 2, "gross_cents": -1250, "tax_rate": "20.00", "currency_code": "EUR", "state": "CANCELLED",
        "booked": "2026-03-29T01:30:00", "last_modified": "2026-03-29T03:30:00+02:00", "waiter": "Léa",
        "status": "legacy"}


def test_a_record_is_mapped_from_nested_fields_cents_and_their_codes():
    row = mapper()(ITEM)
    assert (row["id"], row["folio_id"], row["reservation_id"], row["category"], row["status"]) == (
        "17", "F1", "R9", "BEVERAGE", "void")
    assert str(row["amount"]) == "-12.50" and str(row["quantity"]) == "2.000"
    assert row["posted_at"] == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Paris, before the DST change
    assert row["updated_at"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert row["lf_invalid"] is None
    # what no mapping reads is kept; a field named like a canonical one stays apart from it
    assert json.loads(row["lf_extra"]) == {"waiter": "Léa", "raw.status": "legacy"}


@pytest.mark.parametrize("field, value, reason", [
    ("gross_cents", 12.5, "whole number of minor units"),
    ("gross_cents", "12.50", "whole number of minor units"),
    ("gross_cents", True, "whole number of minor units"),
    ("state", "VOIDED", "is not in values.status (known: OPEN, CANCELLED)"),
    ("tax_rate", "20,0", "is not a percentage"),
    ("last_modified", "yesterday", "is not an ISO 8601 time"),
])
def test_an_invalid_value_is_nulled_and_described(field, value, reason):
    row = mapper()({**ITEM, field: value})
    problems = json.loads(row["lf_invalid"])
    column = {"gross_cents": "amount", "state": "status", "tax_rate": "vat_rate",
              "last_modified": "updated_at"}[field]
    assert row[column] is None and problems[column]["value"] == str(value) and reason in problems[column]["reason"]


def test_a_naive_time_is_refused_without_a_timezone():
    row = mapper(timezone=None)(ITEM)
    assert row["posted_at"] is None and "has no UTC offset" in json.loads(row["lf_invalid"])["posted_at"]["reason"]


def test_a_missing_nested_field_is_null_and_left_to_staging():
    row = mapper(table="payments")({"settlement_id": "S1", "guest": {"company": None}, "amount_cents": 100})
    assert row["company_id"] is None and row["company_name"] is None and row["lf_invalid"] is None


@pytest.mark.parametrize("time_format, expected", [
    ("iso", "2026-03-01T04:05:06.000000Z"), ("epoch", "1772337906"), ("epoch_ms", "1772337906000"),
    ("%Y-%m-%d %H:%M:%S", "2026-03-01 04:05:06"),
])
def test_times_in_parameters_are_spelt_as_the_api_wants(time_format, expected):
    assert param_time(datetime(2026, 3, 1, 5, 5, 6, tzinfo=ZoneInfo("Europe/Paris")), time_format) == expected


# --- bad records -------------------------------------------------------------------------------

def test_bad_records_are_rejected_with_value_and_reason_and_the_rest_loads(folio, folio_store, tmp_path):
    moment = "2026-03-06T20:00:00+01:00"
    good = {"item_id": "GOOD", "folio": {"id": "F9"}, "article": {"code": "FB-FOOD"}, "qty": 1, "gross_cents": 1234,
            "tax_rate": "10.00", "currency_code": "EUR", "state": "OPEN", "booked": moment, "last_modified": moment}
    bad = {
        "HALF-CENT": {"gross_cents": "1234.5"},
        "NAIVE": {"booked": "2026-03-06T20:00:00"},
        "ODD-CODE": {"article": {"code": "GIFT-SHOP"}},
        "ODD-STATE": {"state": "PENDING"},
    }
    visible = datetime.fromisoformat(moment)
    for record_id, change in {"GOOD": {}, **bad}.items():
        folio_store.add("folio-items", {**good, "item_id": record_id, **change}, visible_from=visible)
    folio_store.set_clock(CLOCK + timedelta(days=1))
    try:
        tenant = tenant_file(tmp_path, "folio-cloud.toml", lambda pms: pms.pop("timezone"), base_url=folio.url)
        _, staged = extract_and_stage(tenant, updated_since=datetime(2026, 3, 6, tzinfo=UTC))
    finally:
        folio_store.set_clock(CLOCK)
    rejects = {row["record_id"]: row for row in staged.rejects.to_dicts()}
    assert set(rejects) == set(bad)
    assert (rejects["HALF-CENT"]["value"], rejects["HALF-CENT"]["column_name"]) == ("1234.5", "amount")
    assert "minor units" in rejects["HALF-CENT"]["reason"]
    assert rejects["NAIVE"]["value"] == "2026-03-06T20:00:00" and "offset" in rejects["NAIVE"]["reason"]
    assert "values.category" in rejects["ODD-CODE"]["reason"] and rejects["ODD-CODE"]["value"] == "GIFT-SHOP"
    assert "PENDING" == rejects["ODD-STATE"]["value"]
    amount = query_one(tenant, "SELECT amount FROM sales_line WHERE source_id = 'GOOD'")
    assert str(amount) == "12.34"


def query_one(tenant, sql: str):
    with opened(tenant.duckdb_path()) as con:
        return query(con, sql).item()
