"""The fake Xero the API clients are tested against: bookkeeping rules, OAuth 2 with rotating
refresh tokens, idempotency keys, rate limits on an injected clock, injected faults, and the
check of every request against Xero's official OpenAPI description. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass

import httpx
import pytest

from destinations.apis.fakes.openapi_check import SpecRequest, load_openapi
from destinations.apis.fakes.xero import FakeXero
from destinations.apis.fakes.xero_books import WhereError, parse_where
from tests.destinations.apis.clock import Clock


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def server(shared_dir, clock):
    with FakeXero(tenants=("Bakkerij Peeters BV", "Garage Dubois SRL"), now=clock,
                  specs=shared_dir / "specs" / "xero") as fake:
        yield fake


@pytest.fixture
def fake(server: FakeXero) -> FakeXero:
    server.reset()
    server.latency = 0.0
    return server


@pytest.fixture
def api(fake: FakeXero):
    """A client of the first organisation with a fresh token."""
    tokens = fake.issue_tokens()
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": fake.tenant_id}
    with httpx.Client(base_url=fake.api_url, headers=headers, timeout=5) as client:
        yield client


def journal(narration: str, amount: float = 100.0, *, credit: float | None = None, **extra) -> dict:
    """A two-line manual journal: ``amount`` debited to 400, ``credit`` (default: the same) to 200."""
    return {"Narration": narration, "Date": "2026-03-31", **extra,
            "JournalLines": [{"LineAmount": amount, "AccountCode": "400", "Description": "debit"},
                             {"LineAmount": -amount if credit is None else credit, "AccountCode": "200",
                              "Description": "credit"}]}


def sales_invoice(number: str | None = None, **extra) -> dict:
    invoice = {"Type": "ACCREC", "Contact": {"Name": "Hotel Guest GmbH"}, "Date": "2026-03-31",
               "DueDate": "2026-04-30", "Status": "AUTHORISED",
               "LineItems": [{"Description": "Room 12, 3 nights", "Quantity": 3, "UnitAmount": 120.0,
                              "AccountCode": "200", "TaxAmount": 21.6}], **extra}
    if number:
        invoice["InvoiceNumber"] = number
    return invoice


# --- manual journals -----------------------------------------------------------------------------

def test_several_journals_in_one_put_are_stored_and_found_by_narration_and_id(fake, api):
    reply = api.put("/ManualJournals", json={"ManualJournals": [journal("LF-2026-03-31 revenue"),
                                                                journal("LF-2026-03-31 payroll", 250)]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["Status"] == "OK" and body["ProviderName"] and body["DateTimeUTC"].startswith("/Date(")
    created = body["ManualJournals"]
    assert [j["Narration"] for j in created] == ["LF-2026-03-31 revenue", "LF-2026-03-31 payroll"]
    assert all(uuid.UUID(j["ManualJournalID"]) and j["Status"] == "DRAFT" for j in created)
    assert created[0]["Date"] == "/Date(1774915200000+0000)/"
    assert len(fake.manual_journals) == 2

    found = api.get("/ManualJournals", params={"where": 'Narration=="LF-2026-03-31 payroll"'}).json()
    assert [j["ManualJournalID"] for j in found["ManualJournals"]] == [created[1]["ManualJournalID"]]
    by_id = api.get(f"/ManualJournals/{created[0]['ManualJournalID']}").json()["ManualJournals"]
    assert by_id[0]["JournalLines"][0]["LineAmount"] == 100.0


def test_post_with_a_journal_id_updates_that_journal(fake, api):
    created = api.post("/ManualJournals", json={"ManualJournals": [journal("to post")]}).json()["ManualJournals"][0]
    updated = api.post("/ManualJournals", json={"ManualJournals": [
        {**journal("to post"), "ManualJournalID": created["ManualJournalID"], "Status": "POSTED"}]})
    assert updated.status_code == 200
    assert [(j["ManualJournalID"], j["Status"]) for j in fake.manual_journals] == [(created["ManualJournalID"],
                                                                                   "POSTED")]


def test_journal_list_is_paged_by_100_with_a_pagination_block(fake, api):
    for batch in range(3):
        api.put("/ManualJournals", json={"ManualJournals": [journal(f"J{batch}-{n}") for n in range(50)]})
    page = api.get("/ManualJournals", params={"page": 2}).json()
    assert page["pagination"] == {"page": 2, "pageSize": 100, "pageCount": 2, "itemCount": 150}
    assert len(page["ManualJournals"]) == 50 and page["ManualJournals"][0]["Narration"] == "J2-0"
    assert len(api.get("/ManualJournals").json()["ManualJournals"]) == 150


def test_unbalanced_journal_is_refused_in_xero_validation_shape_and_nothing_is_saved(fake, api):
    reply = api.put("/ManualJournals", json={"ManualJournals": [journal("balanced"),
                                                                journal("unbalanced", 100, credit=-10)]})
    assert reply.status_code == 400
    body = reply.json()
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (10, "ValidationException",
                                                                    "A validation exception occurred")
    assert [e["Narration"] for e in body["Elements"]] == ["unbalanced"]
    assert body["Elements"][0]["ValidationErrors"] == [
        {"Message": "The total debits (100.00) must equal total credits (-10.00)"}]
    assert fake.manual_journals == []


def test_journal_with_one_line_is_refused(fake, api):
    one_line = {"Narration": "lonely", "JournalLines": [{"LineAmount": 0, "AccountCode": "400"}]}
    reply = api.put("/ManualJournals", json={"ManualJournals": [one_line]})
    assert reply.status_code == 400
    assert "at least two lines" in reply.json()["Elements"][0]["ValidationErrors"][0]["Message"]


def test_summarize_errors_false_saves_the_valid_journals_and_flags_the_others(fake, api):
    reply = api.put("/ManualJournals", params={"summarizeErrors": "false"},
                    json={"ManualJournals": [journal("good"), journal("bad", 100, credit=-99.99)]})
    assert reply.status_code == 200
    good, bad = reply.json()["ManualJournals"]
    assert good["StatusAttributeString"] == "OK" and good["ManualJournalID"]
    assert bad["StatusAttributeString"] == "ERROR" and "ManualJournalID" not in bad
    assert bad["ValidationErrors"][0]["Message"].startswith("The total debits (100.00)")
    assert [j["Narration"] for j in fake.manual_journals] == ["good"]


def test_a_where_the_fake_cannot_read_is_a_query_parse_exception(fake, api):
    reply = api.get("/ManualJournals", params={"where": 'Narration=="x" XOR Status=="DRAFT"'})
    assert reply.status_code == 400 and reply.json()["Type"] == "QueryParseException"


def test_where_reads_and_or_contains_and_guid():
    record = {"Type": "ACCREC", "Total": 12.5, "Contact": {"ContactID": "AB6C0F6B-0000-4000-8000-000000000001",
                                                           "Name": "Hotel Guest GmbH"}}
    assert parse_where('Type=="ACCPAY" OR Type=="ACCREC" AND Total>=12.50')(record)
    assert parse_where('Contact.Name.Contains("Guest") && Contact.ContactID=='
                       'Guid("ab6c0f6b-0000-4000-8000-000000000001")')(record)
    assert not parse_where('Type!="ACCREC"')(record)
    with pytest.raises(WhereError):
        parse_where("Type==")


# --- invoices, credit notes, payments, contacts -------------------------------------------------

def test_sales_and_purchase_invoices_are_found_by_number_and_reference(fake, api):
    purchase = {**sales_invoice(), "Type": "ACCPAY", "InvoiceNumber": "SUP-77", "Reference": "PO-2026-001",
                "Contact": {"Name": "Meelfabriek NV"}}
    reply = api.put("/Invoices", json={"Invoices": [sales_invoice(), sales_invoice("LF-INV-9"), purchase]})
    assert reply.status_code == 200
    numbers = [i["InvoiceNumber"] for i in reply.json()["Invoices"]]
    assert numbers == ["INV-0001", "LF-INV-9", "SUP-77"]
    first = reply.json()["Invoices"][0]
    assert (first["SubTotal"], first["TotalTax"], first["Total"], first["AmountDue"]) == (360.0, 21.6, 381.6, 381.6)
    assert {c["Name"]: (c["IsCustomer"], c["IsSupplier"]) for c in fake.contacts} == {
        "Hotel Guest GmbH": (True, False), "Meelfabriek NV": (False, True)}

    by_number = api.get("/Invoices", params={"where": 'InvoiceNumber=="LF-INV-9"'}).json()["Invoices"]
    by_reference = api.get("/Invoices", params={"where": 'Reference=="PO-2026-001"'}).json()["Invoices"]
    by_list = api.get("/Invoices", params={"InvoiceNumbers": "INV-0001,SUP-77"}).json()["Invoices"]
    assert [i["InvoiceNumber"] for i in by_number + by_reference + by_list] == ["LF-INV-9", "SUP-77", "INV-0001",
                                                                               "SUP-77"]


def test_a_sales_invoice_number_used_twice_is_refused(fake, api):
    api.put("/Invoices", json={"Invoices": [sales_invoice("LF-INV-1")]})
    reply = api.put("/Invoices", json={"Invoices": [sales_invoice("LF-INV-1")]})
    assert reply.status_code == 400
    element = reply.json()["Elements"][0]
    assert element["HasErrors"] is True and "must be unique" in element["ValidationErrors"][0]["Message"]
    assert len(fake.invoices) == 1


def test_credit_notes_are_numbered_and_found_by_number(fake, api):
    note = {**sales_invoice(), "Type": "ACCRECCREDIT"}
    created = api.put("/CreditNotes", json={"CreditNotes": [note, {**note, "CreditNoteNumber": "LF-CN-2"}]})
    assert [c["CreditNoteNumber"] for c in created.json()["CreditNotes"]] == ["CN-0001", "LF-CN-2"]
    found = api.get("/CreditNotes", params={"where": 'CreditNoteNumber=="LF-CN-2"'}).json()["CreditNotes"]
    assert len(found) == 1 and found[0]["RemainingCredit"] == 381.6
    assert len(fake.credit_notes) == 2


def test_a_payment_of_what_is_due_marks_the_invoice_paid(fake, api):
    invoice = api.put("/Invoices", json={"Invoices": [sales_invoice("LF-INV-3")]}).json()["Invoices"][0]
    reply = api.put("/Payments", json={"Payments": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]},
                                                     "Account": {"Code": "090"}, "Date": "2026-04-02",
                                                     "Amount": 381.6, "Reference": "bank 2026-04-02"}]})
    assert reply.status_code == 200
    payment = reply.json()["Payments"][0]
    assert payment["PaymentType"] == "ACCRECPAYMENT" and payment["Invoice"]["InvoiceNumber"] == "LF-INV-3"
    assert (fake.invoices[0]["Status"], fake.invoices[0]["AmountDue"], fake.invoices[0]["AmountPaid"]) == (
        "PAID", 0.0, 381.6)
    assert api.get(f"/Payments/{payment['PaymentID']}").json()["Payments"][0]["Amount"] == 381.6
    assert len(api.get("/Payments").json()["Payments"]) == 1


def test_a_payment_over_what_is_due_or_on_a_draft_is_refused(fake, api):
    draft, authorised = api.put("/Invoices", json={"Invoices": [sales_invoice("D-1", Status="DRAFT"),
                                                                sales_invoice("A-1")]}).json()["Invoices"]
    too_much = {"Invoice": {"InvoiceID": authorised["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 400}
    on_draft = {"InvoiceNumber": "D-1", "Account": {"Code": "090"}, "Amount": 10}
    reply = api.put("/Payments", json={"Payments": [too_much, on_draft]})
    assert reply.status_code == 400
    messages = [e["ValidationErrors"][0]["Message"] for e in reply.json()["Elements"]]
    assert "exceeds the amount outstanding" in messages[0] and "AUTHORISED" in messages[1]
    assert fake.payments == [] and draft["Status"] == "DRAFT"


def test_contacts_are_created_found_by_name_and_names_are_unique(fake, api):
    created = api.put("/Contacts", json={"Contacts": [{"Name": "Garage Dubois"}, {"Name": "Pneus Wallons"}]})
    assert created.status_code == 200
    found = api.get("/Contacts", params={"where": 'Name=="Pneus Wallons"'}).json()["Contacts"]
    assert [c["ContactStatus"] for c in found] == ["ACTIVE"]
    duplicate = api.post("/Contacts", json={"Contacts": [{"Name": "Garage Dubois"}]})
    assert duplicate.status_code == 400
    assert duplicate.json()["Elements"][0]["HasValidationErrors"] is True
    assert len(fake.contacts) == 2


# --- idempotency ---------------------------------------------------------------------------------

def test_the_same_idempotency_key_and_body_replays_the_first_reply_without_creating(fake, api):
    key = str(uuid.uuid4())
    body = {"ManualJournals": [journal("once")]}
    first = api.put("/ManualJournals", json=body, headers={"Idempotency-Key": key})
    again = api.put("/ManualJournals", content=json.dumps(body, indent=2), headers={"Idempotency-Key": key,
                                                                                     "Content-Type":
                                                                                     "application/json"})
    assert again.status_code == 200 and again.json() == first.json()
    assert len(fake.manual_journals) == 1


def test_an_idempotency_key_reused_for_another_body_is_refused(fake, api):
    key = str(uuid.uuid4())
    api.put("/ManualJournals", json={"ManualJournals": [journal("first")]}, headers={"Idempotency-Key": key})
    reply = api.put("/ManualJournals", json={"ManualJournals": [journal("second")]}, headers={"Idempotency-Key": key})
    assert reply.status_code == 400 and key in reply.json()["Message"]
    assert [j["Narration"] for j in fake.manual_journals] == ["first"]


def test_an_idempotency_key_over_128_characters_is_refused(fake, api):
    reply = api.put("/ManualJournals", json={"ManualJournals": [journal("x")]}, headers={"Idempotency-Key": "k" * 129})
    assert reply.status_code == 400 and "at most 128" in reply.json()["Message"]
    assert fake.manual_journals == []


# --- OAuth 2 -------------------------------------------------------------------------------------

def _token(fake: FakeXero, secret: str | None = None, **form) -> httpx.Response:
    return httpx.post(fake.token_url, data=form, auth=(fake.client_id, secret or fake.client_secret))


def test_an_authorization_code_gives_tokens_for_the_granted_organisations(fake):
    second = list(fake.organisations)[1]
    code = fake.issue_code([second])
    reply = _token(fake, grant_type="authorization_code", code=code, redirect_uri=fake.redirect_uri)
    assert reply.status_code == 200
    tokens = reply.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 1800 and tokens["refresh_token"]
    connections = httpx.get(fake.connections_url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert [(c["tenantId"], c["tenantName"], c["tenantType"]) for c in connections.json()] == [
        (second, "Garage Dubois SRL", "ORGANISATION")]
    refused = httpx.get(f"{fake.api_url}/Invoices", headers={"Authorization": f"Bearer {tokens['access_token']}",
                                                              "xero-tenant-id": fake.tenant_id})
    assert refused.status_code == 403 and refused.json()["Detail"] == "AuthorizationUnsuccessful"
    again = _token(fake, grant_type="authorization_code", code=code, redirect_uri=fake.redirect_uri)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


def test_a_code_for_another_redirect_uri_or_a_wrong_client_secret_is_refused(fake):
    code = fake.issue_code()
    wrong_secret = _token(fake, "not-the-secret", grant_type="authorization_code", code=code,
                          redirect_uri=fake.redirect_uri)
    assert wrong_secret.status_code == 401 and wrong_secret.json() == {"error": "invalid_client"}
    wrong_uri = _token(fake, grant_type="authorization_code", code=code, redirect_uri="http://elsewhere/cb")
    assert wrong_uri.json() == {"error": "invalid_grant"}


def test_a_refresh_rotates_the_refresh_token_and_the_old_one_is_refused(fake):
    first = fake.issue_tokens()
    refreshed = _token(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != first["refresh_token"]
    reused = _token(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    assert _token(fake, grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"]).status_code == 200


def test_expired_access_tokens_are_401_token_expired_until_refreshed(fake, api, clock):
    assert api.get("/Contacts").status_code == 200
    fake.expire_access_tokens()
    expired = api.get("/Contacts")
    assert expired.status_code == 401
    assert expired.json()["Title"] == "Unauthorized" and expired.json()["Detail"].startswith("TokenExpired: ")
    later = fake.issue_tokens()
    clock.advance(1800)
    assert httpx.get(f"{fake.api_url}/Contacts", headers={"Authorization": f"Bearer {later['access_token']}",
                                                          "xero-tenant-id": fake.tenant_id}).status_code == 401


def test_a_request_without_a_bearer_token_is_401(fake):
    reply = httpx.get(f"{fake.api_url}/Contacts", headers={"xero-tenant-id": fake.tenant_id})
    assert reply.status_code == 401 and reply.json()["Detail"] == "AuthenticationUnsuccessful"


# --- rate limits ---------------------------------------------------------------------------------

def test_every_reply_carries_the_remaining_calls(fake, api):
    reply = api.get("/Contacts")
    assert (reply.headers["X-DayLimit-Remaining"], reply.headers["X-MinLimit-Remaining"],
            reply.headers["X-AppMinLimit-Remaining"]) == ("4999", "59", "9999")


def test_the_minute_limit_answers_429_with_retry_after_until_the_window_moves(fake, api, clock):
    fake.limits.per_minute = 3
    for _ in range(3):
        assert api.get("/Contacts").status_code == 200
        clock.advance(10)
    refused = api.get("/Contacts")
    assert refused.status_code == 429
    assert (refused.headers["X-Rate-Limit-Problem"], refused.headers["Retry-After"]) == ("minute", "30")
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    clock.advance(30)
    assert api.get("/Contacts").status_code == 200
    assert fake.limit_violations == 1 and fake.max_calls_per_minute == 4


def test_the_day_limit_answers_429_day(fake, api, clock):
    fake.limits.per_day = 2
    api.get("/Contacts")
    clock.advance(1000)  # less than the access token's 30 minutes
    api.get("/Contacts")
    refused = api.get("/Contacts")
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
    assert int(refused.headers["Retry-After"]) == 86_400 - 1000


def test_more_than_five_calls_at_once_are_refused_concurrent(fake, api):
    fake.latency = 0.4
    start = threading.Barrier(8)
    statuses: list[tuple[int, str | None]] = []

    def call() -> None:
        start.wait()
        reply = api.get("/Contacts")
        statuses.append((reply.status_code, reply.headers.get("X-Rate-Limit-Problem")))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses, key=str) == [(200, None)] * 5 + [(429, "concurrent")] * 3
    assert fake.max_in_flight == 5 and fake.limit_violations == 3


# --- injected faults -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_an_injected_failure_answers_once_and_does_nothing(fake, api, kind):
    fake.fail_next(kind, path_contains="/ManualJournals", retry_after=7)
    failed = api.put("/ManualJournals", json={"ManualJournals": [journal("retry me")]})
    assert failed.status_code == int(kind)
    if kind == "429":
        assert failed.headers["Retry-After"] == "7"
    assert fake.manual_journals == []
    assert api.put("/ManualJournals", json={"ManualJournals": [journal("retry me")]}).status_code == 200
    assert len(fake.manual_journals) == 1 and fake.limit_violations == 0


def test_a_timeout_after_commit_leaves_the_journal_to_be_found_on_retry(fake, api):
    fake.fail_next("timeout_after_commit", path_contains="/ManualJournals", delay=0.6)
    key = str(uuid.uuid4())
    body = {"ManualJournals": [journal("LF-batch-42")]}
    with pytest.raises(httpx.ReadTimeout):
        api.put("/ManualJournals", json=body, headers={"Idempotency-Key": key}, timeout=0.2)
    found = api.get("/ManualJournals", params={"where": 'Narration=="LF-batch-42"'}).json()["ManualJournals"]
    assert len(found) == 1
    replay = api.put("/ManualJournals", json=body, headers={"Idempotency-Key": key})
    assert replay.json()["ManualJournals"][0]["ManualJournalID"] == found[0]["ManualJournalID"]
    assert len(fake.manual_journals) == 1


def test_a_validation_fault_rejects_only_the_marked_journals(fake, api):
    fake.fail_next("validation", element_contains="#REJECT", message="Account 400 is archived")
    reply = api.put("/ManualJournals", params={"summarizeErrors": "false"},
                    json={"ManualJournals": [journal("fine"), journal("#REJECT me"), journal("fine too")]})
    statuses = [(j["Narration"], j["StatusAttributeString"]) for j in reply.json()["ManualJournals"]]
    assert statuses == [("fine", "OK"), ("#REJECT me", "ERROR"), ("fine too", "OK")]
    assert reply.json()["ManualJournals"][1]["ValidationErrors"] == [{"Message": "Account 400 is archived"}]
    assert [j["Narration"] for j in fake.manual_journals] == ["fine", "fine too"]


def test_an_unknown_fault_kind_is_refused(fake):
    with pytest.raises(ValueError, match="not one of"):
        fake.fail_next("418")


# --- the official description --------------------------------------------------------------------

def test_a_request_that_breaks_the_description_is_recorded_and_refused(fake, api):
    reply = api.put("/ManualJournals", json={"ManualJournals": [{"Narration": 42, "JournalLines": "none"}]})
    assert reply.status_code == 400
    assert [(v.method, v.path) for v in fake.spec_violations] == [("PUT", "/api.xro/2.0/ManualJournals")]
    assert "Narration: 42 is not of type 'string'" in fake.spec_violations[0].message
    no_tenant = httpx.get(f"{fake.api_url}/Contacts", headers={"Authorization": api.headers["Authorization"]})
    assert no_tenant.status_code == 400 and "xero-tenant-id" in fake.spec_violations[-1].message
    assert fake.manual_journals == []


@dataclass
class _SpecResponse:
    data: bytes
    status_code: int
    content_type: str
    headers: dict


def test_the_fakes_replies_match_the_description(fake, api, shared_dir):
    """The fake's own answers are checked too, so clients are not tested against a wrong shape."""
    description = load_openapi(shared_dir / "specs" / "xero" / "xero_accounting.yaml")
    invoice = api.put("/Invoices", json={"Invoices": [sales_invoice("R-1")]}).json()["Invoices"][0]
    calls = [("PUT", "/ManualJournals", {"ManualJournals": [journal("shape")]}),
             ("PUT", "/ManualJournals", {"ManualJournals": [journal("bad", credit=-1)]}),
             ("PUT", "/Contacts", {"Contacts": [{"Name": "Shape BV"}]}),
             ("PUT", "/Payments", {"Payments": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]},
                                                 "Account": {"Code": "090"}, "Amount": 1}]}),
             ("GET", "/Invoices", None), ("GET", "/CreditNotes", None), ("GET", "/ManualJournals", None)]
    for method, path, body in calls:
        content = json.dumps(body).encode() if body else b""
        reply = api.request(method, path, content=content or None,
                            headers={"Content-Type": "application/json"} if body else {})
        request = SpecRequest("https://api.xero.com", "/api.xro/2.0" + path, method, [],
                              list(api.headers.items()), content, "application/json")
        response = _SpecResponse(reply.content, reply.status_code, "application/json", dict(reply.headers))
        errors = list(description.response_validator.iter_errors(request, response))
        assert errors == [], (method, path, [str(e.__cause__ or e) for e in errors])
