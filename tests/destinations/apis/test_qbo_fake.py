"""The fake QuickBooks Online: what a client posting journals, invoices and payments can rely on,
spoken to over HTTP with httpx. Time is a test clock, so rate limits are crossed without waiting."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import pytest

from destinations.apis.fakes.qbo import ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, REALM, FakeQbo
from destinations.apis.fakes.qbo_schema import check_payload
from tests.destinations.apis.clock import Clock

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def xsd_dir(shared_dir):
    return shared_dir / "specs" / "qbo"


@pytest.fixture(scope="module")
def module_clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def server(xsd_dir, module_clock):
    """One running fake for the module (starting and stopping uvicorn costs ~0.25 s); the
    per-second limit is lifted here, the tests of the limits start their own."""
    with FakeQbo(now=module_clock, xsd_dir=xsd_dir, per_second=1_000) as running:
        yield running


@pytest.fixture
def clock(module_clock) -> Clock:
    module_clock.seconds = 1_000.0
    return module_clock


@pytest.fixture
def fake(server, clock) -> FakeQbo:
    """The module's fake, back to its seeded state, with the clock back at its start."""
    server.reset()
    return server


@pytest.fixture
def qbo(fake):
    """A client of the first realm, authorised with the token the fake was seeded with."""
    with httpx.Client(base_url=fake.api_url(), headers={"Authorization": f"Bearer {ACCESS_TOKEN}", **JSON},
                      timeout=5) as client:
        yield client


def journal_entry(doc_number: str, debit: str = "100.00", credit: str = "100.00", **extra) -> dict:
    return {"DocNumber": doc_number, "TxnDate": "2026-03-31", "PrivateNote": f"ledgerflow {doc_number}", **extra,
            "Line": [journal_line("Debit", debit, "35"), journal_line("Credit", credit, "79")]}


def journal_line(posting_type: str, amount: str, account: str) -> dict:
    return {"Amount": Decimal(amount), "DetailType": "JournalEntryLineDetail", "Description": "March revenue",
            "JournalEntryLineDetail": {"PostingType": posting_type, "AccountRef": {"value": account}}}


def invoice(customer_id: str, doc_number: str, amount: str = "250.00") -> dict:
    return {"DocNumber": doc_number, "CustomerRef": {"value": customer_id}, "Line": [
        {"Amount": Decimal(amount), "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": Decimal(amount) / 2}}]}


def post(client: httpx.Client, path: str, body: dict, **params) -> httpx.Response:
    """JSON as QBO wants it; Decimal amounts go out as JSON numbers."""
    return client.post(path, content=json.dumps(body, default=float), params=params,
                       headers={"Content-Type": "application/json"})


def query(client: httpx.Client, text: str) -> dict:
    response = client.get("/query", params={"query": text})
    assert response.status_code == 200, response.text
    return response.json()["QueryResponse"]


def fault_codes(response: httpx.Response) -> list[str]:
    return [error["code"] for error in response.json()["Fault"]["Error"]]


# --- journal entries, invoices, payments, customers ---------------------------------------------

def test_journal_entry_is_created_read_back_and_stored(fake, qbo):
    created = post(qbo, "/journalentry", journal_entry("JE-2026-03"))
    assert created.status_code == 200, created.text
    entry = created.json()["JournalEntry"]
    assert entry["TotalAmt"] == 100.0 and entry["SyncToken"] == "0" and "time" in created.json()
    assert qbo.get(f"/journalentry/{entry['Id']}").json()["JournalEntry"]["DocNumber"] == "JE-2026-03"
    assert fake.entities["JournalEntry"][entry["Id"]]["TotalAmt"] == Decimal("100.00")
    assert fake.spec_violations == []


def test_query_finds_a_journal_entry_by_doc_number_and_private_note(qbo):
    post(qbo, "/journalentry", journal_entry("JE-1"))
    post(qbo, "/journalentry", journal_entry("JE-2"))
    found = query(qbo, "select * from JournalEntry where DocNumber = 'JE-2' and PrivateNote = 'ledgerflow JE-2'")
    assert [e["DocNumber"] for e in found["JournalEntry"]] == ["JE-2"]
    assert (found["startPosition"], found["maxResults"]) == (1, 1)


def test_query_without_a_match_answers_an_empty_query_response(qbo):
    assert query(qbo, "SELECT * FROM journalentry WHERE DocNumber = 'O\\'Brien'") == {}


def test_query_pages_with_startposition_and_maxresults(qbo):
    for number in range(1, 6):
        post(qbo, "/journalentry", journal_entry(f"JE-{number}"))
    page = query(qbo, "select * from JournalEntry startposition 3 maxresults 2")
    assert [e["DocNumber"] for e in page["JournalEntry"]] == ["JE-3", "JE-4"]
    assert (page["startPosition"], page["maxResults"]) == (3, 2)


def test_query_on_a_field_the_fake_does_not_filter_is_refused(qbo):
    response = qbo.get("/query", params={"query": "select * from Invoice where Balance = '0'"})
    assert response.status_code == 400 and fault_codes(response) == ["4001"]


def test_unbalanced_journal_entry_is_a_validation_fault_and_stores_nothing(fake, qbo):
    response = post(qbo, "/journalentry", journal_entry("JE-BAD", debit="100.00", credit="90.00"))
    assert response.status_code == 400
    fault = response.json()["Fault"]
    assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "6000"
    assert "Transaction is not balanced" in fault["Error"][0]["Detail"]
    assert fake.entities["JournalEntry"] == {}


def test_account_that_is_not_in_the_company_is_an_invalid_reference(fake, qbo):
    entry = journal_entry("JE-1")
    entry["Line"][1]["JournalEntryLineDetail"]["AccountRef"] = {"value": "4711"}
    response = post(qbo, "/journalentry", entry)
    assert response.status_code == 400 and fault_codes(response) == ["2500"]
    fake.add_account("4711", "Room revenue", account_type="Income")
    assert post(qbo, "/journalentry", entry).status_code == 200


def test_invoice_then_payment_closes_the_open_balance(fake, qbo):
    customer = post(qbo, "/customer", {"DisplayName": "Hotel Guest Ltd"}).json()["Customer"]
    created = post(qbo, "/invoice", invoice(customer["Id"], "INV-1")).json()["Invoice"]
    assert (created["TotalAmt"], created["Balance"]) == (250.0, 250.0)
    payment = {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 300,
               "Line": [{"Amount": 250, "LinkedTxn": [{"TxnId": created["Id"], "TxnType": "Invoice"}]}]}
    paid = post(qbo, "/payment", payment)
    assert paid.status_code == 200, paid.text
    assert paid.json()["Payment"]["UnappliedAmt"] == 50.0
    assert qbo.get(f"/invoice/{created['Id']}").json()["Invoice"]["Balance"] == 0
    assert fake.spec_violations == []


def test_payment_cannot_apply_more_than_the_invoice_balance(qbo, fake):
    customer_id = fake.add_customer("Tour Operator SA")
    created = post(qbo, "/invoice", invoice(customer_id, "INV-2", "80.00")).json()["Invoice"]
    payment = {"CustomerRef": {"value": customer_id}, "TotalAmt": 100,
               "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": created["Id"], "TxnType": "Invoice"}]}]}
    response = post(qbo, "/payment", payment)
    assert response.status_code == 400 and fault_codes(response) == ["6000"]


def test_credit_memo_keeps_its_remaining_credit(qbo, fake):
    customer_id = fake.add_customer("Walk-in Guest")
    memo = post(qbo, "/creditmemo", invoice(customer_id, "CM-1", "40.00")).json()["CreditMemo"]
    assert (memo["TotalAmt"], memo["RemainingCredit"]) == (40.0, 40.0)


def test_invoice_for_an_unknown_customer_is_an_invalid_reference(qbo):
    response = post(qbo, "/invoice", invoice("999", "INV-3"))
    assert response.status_code == 400 and fault_codes(response) == ["2500"]


def test_customer_display_name_is_unique(qbo):
    assert post(qbo, "/customer", {"DisplayName": "Acme"}).status_code == 200
    again = post(qbo, "/customer", {"DisplayName": "Acme"})
    assert again.status_code == 400 and fault_codes(again) == ["6240"]


def test_reading_an_object_that_does_not_exist_is_object_not_found(qbo):
    response = qbo.get("/journalentry/42")
    assert response.status_code == 400 and fault_codes(response) == ["610"]


# --- requestid ---------------------------------------------------------------------------------

def test_repeated_requestid_returns_the_original_reply_and_creates_nothing(fake, qbo):
    first = post(qbo, "/journalentry", journal_entry("JE-1"), requestid="9f1c2b7e-run-42-je-1")
    second = post(qbo, "/journalentry", journal_entry("JE-1"), requestid="9f1c2b7e-run-42-je-1")
    assert second.status_code == 200 and second.content == first.content
    assert len(fake.entities["JournalEntry"]) == 1


def test_requestid_longer_than_allowed_is_refused(qbo):
    too_long = post(qbo, "/journalentry", journal_entry("JE-1"), requestid="x" * 51)
    assert too_long.status_code == 400 and fault_codes(too_long) == ["2050"]
    batch = post(qbo, "/batch", {"BatchItemRequest": [{"bId": "1", "Query": "select * from Account"}]},
                 requestid="x" * 37)
    assert batch.status_code == 400 and fault_codes(batch) == ["2050"]


# --- OAuth 2.0 ---------------------------------------------------------------------------------

def token_request(fake: FakeQbo, **form: str) -> httpx.Response:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return httpx.post(fake.token_url, data=form, headers={"Authorization": f"Basic {basic}", **JSON})


def test_refresh_tokens_rotate_and_an_old_one_is_refused(fake):
    code = fake.issue_code(REALM)
    first = token_request(fake, grant_type="authorization_code", code=code, redirect_uri="https://example.org/cb")
    assert first.status_code == 200, first.text
    assert first.json()["expires_in"] == 3600 and first.json()["x_refresh_token_expires_in"] > 0
    second = token_request(fake, grant_type="refresh_token", refresh_token=first.json()["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first.json()["refresh_token"]
    reused = token_request(fake, grant_type="refresh_token", refresh_token=first.json()["refresh_token"])
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    token = second.json()["access_token"]
    assert httpx.get(f"{fake.api_url()}/account/35", headers={"Authorization": f"Bearer {token}", **JSON}).is_success


def test_an_authorization_code_works_once(fake):
    code = fake.issue_code()
    assert token_request(fake, grant_type="authorization_code", code=code, redirect_uri="https://x/cb").is_success
    again = token_request(fake, grant_type="authorization_code", code=code, redirect_uri="https://x/cb")
    assert again.json() == {"error": "invalid_grant"}


def test_wrong_client_credentials_are_invalid_client(fake):
    response = httpx.post(fake.token_url, data={"grant_type": "refresh_token", "refresh_token": "x"},
                          auth=(CLIENT_ID, "wrong"))
    assert response.status_code == 401 and response.json() == {"error": "invalid_client"}


def test_expired_access_tokens_are_answered_401(fake, qbo):
    fake.expire_access_tokens()
    response = qbo.get("/account/35")
    assert response.status_code == 401
    assert response.json()["fault"]["type"] == "AUTHENTICATION"
    assert "statusCode=401" in response.json()["fault"]["error"][0]["message"]


def test_access_token_lasts_an_hour_on_the_clock(fake, qbo, clock):
    clock.advance(3599)
    assert qbo.get("/account/35").status_code == 200
    clock.advance(1)
    assert qbo.get("/account/35").status_code == 401


def test_token_of_another_company_is_forbidden(fake, qbo):
    fake.add_realm("123145825262101")
    assert qbo.get(f"{fake.api_url('123145825262101')}/account/35").status_code == 403


# --- rate limits -------------------------------------------------------------------------------

def test_the_501st_request_in_a_minute_is_429_until_the_minute_has_passed(xsd_dir, clock):
    with FakeQbo(now=clock, xsd_dir=xsd_dir) as fake, httpx.Client(
            base_url=fake.api_url(), headers={"Authorization": f"Bearer {ACCESS_TOKEN}", **JSON}) as client:
        for _ in range(500):
            clock.advance(0.11)  # 9 a second: under the per-second limit
            assert client.get("/account/35").status_code == 200
        refused = client.get("/account/35")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert fake.max_per_minute == 500
        assert [(v.limit, v.realm) for v in fake.limit_violations] == [("per_minute", REALM)]
        clock.advance(60)
        assert client.get("/account/35").status_code == 200


def test_the_11th_request_in_a_second_is_429(xsd_dir, clock):
    with FakeQbo(now=clock, xsd_dir=xsd_dir) as fake, httpx.Client(
            base_url=fake.api_url(), headers={"Authorization": f"Bearer {ACCESS_TOKEN}", **JSON}) as client:
        statuses = [client.get("/account/35").status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]
        assert fake.limit_violations[0].limit == "per_second" and fake.max_per_second == 10
        clock.advance(1)
        assert client.get("/account/35").status_code == 200


def test_the_41st_batch_in_a_minute_is_429(fake, qbo, clock):
    batch = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Account"}]}
    for _ in range(40):
        clock.advance(1)
        assert post(qbo, "/batch", batch).status_code == 200
    assert post(qbo, "/batch", batch).status_code == 429
    assert fake.limit_violations[-1].limit == "batch_per_minute"
    assert qbo.get("/account/35").status_code == 200  # other requests still have room


# --- batch -------------------------------------------------------------------------------------

def test_batch_creates_queries_and_faults_item_by_item(fake, qbo):
    items = [{"bId": "je-1", "operation": "create", "JournalEntry": journal_entry("JE-1")},
             {"bId": "je-2", "operation": "create", "JournalEntry": journal_entry("JE-2", credit="1.00")},
             {"bId": "q", "Query": "select * from JournalEntry where DocNumber = 'JE-1'"}]
    response = post(qbo, "/batch", {"BatchItemRequest": items})
    assert response.status_code == 200, response.text
    answers = {answer["bId"]: answer for answer in response.json()["BatchItemResponse"]}
    assert answers["je-1"]["JournalEntry"]["DocNumber"] == "JE-1"
    assert answers["je-2"]["Fault"]["Error"][0]["code"] == "6000"
    assert answers["q"]["QueryResponse"]["JournalEntry"][0]["DocNumber"] == "JE-1"
    assert [e["DocNumber"] for e in fake.entities["JournalEntry"].values()] == ["JE-1"]


def test_batch_of_more_than_30_items_is_refused(qbo):
    items = [{"bId": str(n), "Query": "select * from Account"} for n in range(31)]
    assert post(qbo, "/batch", {"BatchItemRequest": items}).status_code == 400


# --- injected faults ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "status"), [("429", 429), ("500", 500), ("503", 503)])
def test_injected_server_faults_store_nothing_and_pass(fake, qbo, kind, status):
    fake.fail_next(kind, path_contains="/journalentry")
    refused = post(qbo, "/journalentry", journal_entry("JE-1"), requestid="run-1-je-1")
    assert refused.status_code == status and fake.entities["JournalEntry"] == {}
    if kind == "429":
        assert refused.headers["Retry-After"] == "60"
    assert post(qbo, "/journalentry", journal_entry("JE-1"), requestid="run-1-je-1").status_code == 200


def test_timeout_after_commit_stores_the_entry_so_a_client_finds_it_by_doc_number(fake, qbo):
    fake.fail_next("timeout_after_commit", delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        post(_impatient(fake), "/journalentry", journal_entry("JE-LOST"))
    found = query(qbo, "select * from JournalEntry where DocNumber = 'JE-LOST'")
    assert len(found["JournalEntry"]) == 1


def test_timeout_after_commit_with_requestid_replays_the_stored_reply(fake, qbo):
    fake.fail_next("timeout_after_commit", delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        post(_impatient(fake), "/journalentry", journal_entry("JE-LOST"), requestid="run-7-je-lost")
    retried = post(qbo, "/journalentry", journal_entry("JE-LOST"), requestid="run-7-je-lost")
    assert retried.status_code == 200 and len(fake.entities["JournalEntry"]) == 1


def _impatient(fake: FakeQbo) -> httpx.Client:
    return httpx.Client(base_url=fake.api_url(), headers={"Authorization": f"Bearer {ACCESS_TOKEN}", **JSON},
                        timeout=0.1)


def test_validation_fault_hits_the_marked_object_only(fake, qbo):
    fake.fail_next("validation", marker="POISON")
    items = [{"bId": "ok", "operation": "create", "JournalEntry": journal_entry("JE-1")},
             {"bId": "bad", "operation": "create", "JournalEntry": journal_entry("JE-POISON-2")}]
    answers = {a["bId"]: a for a in post(qbo, "/batch", {"BatchItemRequest": items}).json()["BatchItemResponse"]}
    assert "JournalEntry" in answers["ok"] and answers["bad"]["Fault"]["type"] == "ValidationFault"
    assert post(qbo, "/journalentry", journal_entry("JE-POISON-2")).status_code == 200  # used up


# --- the request checker (official XSD) ---------------------------------------------------------

def test_unknown_element_is_a_spec_violation(fake, qbo):
    response = post(qbo, "/journalentry", journal_entry("JE-1", JournalCode="VT"))
    assert response.status_code == 400 and fault_codes(response) == ["2010"]
    assert [(v.entity, v.path) for v in fake.spec_violations] == [("JournalEntry", "JournalCode")]
    assert fake.entities["JournalEntry"] == {}


def test_non_decimal_amount_is_a_spec_violation(fake, qbo):
    entry = journal_entry("JE-1")
    entry["Line"][0]["Amount"] = "100,00"
    assert post(qbo, "/journalentry", entry).status_code == 400
    assert [(v.path, "xs:decimal" in v.message) for v in fake.spec_violations] == [("Line[0].Amount", True)]


def test_wrong_posting_type_and_date_are_spec_violations(xsd_dir):
    entry = journal_entry("JE-1", TxnDate="31.03.2026")
    entry["Line"][0]["JournalEntryLineDetail"]["PostingType"] = "Debet"
    paths = [v.path for v in check_payload("JournalEntry", entry, xsd_dir)]
    assert paths == ["TxnDate", "Line[0].JournalEntryLineDetail.PostingType"]


def test_unknown_element_inside_a_batch_item_is_a_spec_violation(fake, qbo):
    item = {"bId": "1", "operation": "create", "Invoice": {"CustomerRef": {"value": "1"}, "Lines": []}}
    assert post(qbo, "/batch", {"BatchItemRequest": [item]}).status_code == 400
    assert [v.path for v in fake.spec_violations] == ["BatchItemRequest[0].Invoice.Lines"]


def test_request_without_accept_json_is_recorded(fake):
    httpx.get(f"{fake.api_url()}/account/35", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert [(v.entity, v.path) for v in fake.spec_violations] == [("request", "Accept")]


def test_the_fakes_own_replies_fit_the_xsd(fake, qbo, xsd_dir):
    customer_id = fake.add_customer("Hotel Guest Ltd")
    replies = [post(qbo, "/journalentry", journal_entry("JE-1")).json()["JournalEntry"],
               post(qbo, "/invoice", invoice(customer_id, "INV-1")).json()["Invoice"],
               qbo.get("/customer/" + customer_id).json()["Customer"],
               qbo.get("/account/35").json()["Account"]]
    for reply, entity in zip(replies, ["JournalEntry", "Invoice", "Customer", "Account"]):
        assert check_payload(entity, reply, xsd_dir) == []


def test_batch_without_items_misses_a_required_element(fake, qbo):
    response = post(qbo, "/batch", {})
    assert response.status_code == 400
    assert [(v.entity, "BatchItemRequest" in v.message) for v in fake.spec_violations] == [("IntuitBatchRequest", True)]


def test_an_entity_the_fake_does_not_serve_is_an_unsupported_operation(qbo):
    response = post(qbo, "/vendor", {"DisplayName": "Linen Supply"})
    assert response.status_code == 400 and fault_codes(response) == ["500"]
