"""The training-management system both ways: pulled through dlt into a real DuckDB file from a
stateful fake on 127.0.0.1, staged into open items, matched, and answered (payments, PO numbers,
due dates) under the conflict rules of ``sources.training.push``."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
import requests

from schemas.tables import BankLine, polars_schema
from schemas.tenant import PACKAGED_TENANTS, parse_tenant
from sources import http_audit
from sources.extract import ExtractError, extract
from sources.training import TrainingAuthError
from sources.training.fake import TOKEN, Fault, TrainingServer, TrainingStore, WebhookSender
from sources.training.push import TrainingClient, after_precondition_failed, payment_refusal
from sources.webhooks import verify
from transforms.recon.engine import reconcile as match
from warehouse.db import insert, opened, query
from warehouse.recon import open_state, record
from warehouse.stage_training import stage_training
from warehouse.training_push import push_training, read_update_csv

SOURCE = "courses"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
OUR_IBAN = "FR7630006000011234567890189"


@pytest.fixture(scope="module")
def server():
    with TrainingServer(TrainingStore()) as running:
        yield running


@pytest.fixture
def system(server, monkeypatch):
    """A fresh store behind the shared server, and the token in the environment."""
    server.store = TrainingStore()
    monkeypatch.setenv("TRAINING_API_TOKEN", TOKEN)
    return server.store


@pytest.fixture
def tenant(server, tmp_path):
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={},
                    sources={SOURCE: {"type": "training", "base_url": server.url, "page_size": 2, "retries": 2,
                                      "bank_account": OUR_IBAN}})
    return parse_tenant(document, "test tenant")


def pull(tenant, run_id="run-1", **kwargs):
    """Extract and stage, as the close does."""
    extracted = extract(tenant, SOURCE, **(kwargs or {"updated_since": SINCE}))
    with opened(tenant.duckdb_path()) as con:
        return extracted, stage_training(con, tenant, SOURCE, extracted.load_ids, run_id=run_id, now=NOW)


def items(tenant) -> dict[str, tuple[str, Decimal]]:
    with opened(tenant.duckdb_path()) as con:
        rows = query(con, "SELECT item_id, kind, amount_open FROM open_item ORDER BY item_id")
    return {i: (k, a) for i, k, a in rows.iter_rows()}


def sql(tenant, text: str, params: list | None = None) -> pl.DataFrame:
    with opened(tenant.duckdb_path()) as con:
        return query(con, text, params)


# --------------------------------------------------------------------------- pulling

def test_incremental_pull_twice_adds_nothing_and_a_change_adds_a_version(system, tenant):
    first = system.add_invoice("TR-001", "1200.00")
    system.add_invoice("TR-002", "450.50")
    system.add_payment(first["id"], "200.00")
    _, staged = pull(tenant)
    assert staged.items == 2 and staged.rejects.is_empty()
    system.change_invoice(first["id"], total="1300.00")
    again, _ = pull(tenant, run_id="run-2")  # the same updated_since: everything is delivered again
    assert again.duplicates == []
    assert sql(tenant, "SELECT id, version, total FROM raw_courses.invoices ORDER BY id, version").rows() == [
        (first["id"], 2, Decimal("1200.00")), (first["id"], 3, Decimal("1300.00")), ("inv_00002", 1, Decimal("450.50"))]
    assert sql(tenant, "SELECT count(*) FROM raw_courses.payments").item() == 1
    assert items(tenant)[f"{SOURCE}:{first['id']}"] == ("invoice", Decimal("1100.00"))


def test_backfill_window_is_on_updated_at(system, tenant):
    system.add_invoice("TR-010", "100.00")  # 2026-03-02
    system.clock += timedelta(days=2)
    system.add_invoice("TR-011", "200.00")  # 2026-03-04
    start = datetime(2026, 3, 4, tzinfo=UTC)
    extracted, _ = pull(tenant, posted_window=(start, start + timedelta(days=1)))
    assert extracted.mode == "window"
    assert sql(tenant, "SELECT number FROM raw_courses.invoices").rows() == [("TR-011",)]
    assert any("updated_before=" in path for _, path in system.requests)


def test_pages_are_followed_429_waits_and_the_token_stays_out_of_the_audit_log(system, tenant, tmp_path,
                                                                                 monkeypatch):
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv(http_audit.ENV, str(log))
    for number in range(5):
        system.add_invoice(f"TR-02{number}", "10.00")
    system.faults.append(Fault(429, retry_after="0", path="/invoices"))
    pull(tenant)
    gets = [path for method, path in system.requests if path.startswith("/api/v1/invoices")]
    assert len(gets) == 1 + 3  # the throttled one, then 3 pages of at most 2
    assert sum("page_token=" in path for path in gets) == 2
    assert sql(tenant, "SELECT count(*) FROM raw_courses.invoices").item() == 5
    text = log.read_text()
    assert TOKEN not in text and '"Authorization": "***"' in text and '"status": 429' in text


def test_a_revoked_token_is_a_clear_error_and_nothing_is_loaded(system, tenant, monkeypatch):
    system.add_invoice("TR-030", "10.00")
    system.token_revoked = True
    with pytest.raises(ExtractError, match="TRAINING_API_TOKEN.*(expired|revoked)"):
        extract(tenant, SOURCE, updated_since=SINCE)
    monkeypatch.delenv("TRAINING_API_TOKEN")
    with pytest.raises(ExtractError, match="TRAINING_API_TOKEN is not set"):
        extract(tenant, SOURCE, updated_since=SINCE)
    with opened(tenant.duckdb_path()) as con:
        assert not query(con, "SELECT * FROM information_schema.tables WHERE table_schema = 'raw_courses'").height


def test_invalid_records_are_rejected_and_the_rest_is_staged(system, tenant):
    good = system.add_invoice("TR-040", "500.00")
    system.add_raw("invoices", {**good, "id": "inv_bad", "number": "TR-041", "total": "12.345"})
    system.add_raw("invoices", {**good, "id": "inv_odd", "number": "TR-042", "status": "sent"})
    system.add_raw("refunds", {"id": "ref_bad", "invoice_id": good["id"], "amount": "-5.00", "currency": "EUR",
                               "refunded_at": "2026-03-02 10:00", "updated_at": "2026-03-02T10:00:00Z"})
    _, staged = pull(tenant)
    found = {(r["record_id"], r["column_name"], r["value"]) for r in staged.rejects.iter_rows(named=True)}
    assert ("inv_bad", "total", "12.345") in found
    assert ("inv_odd", "status", "sent") in found
    assert ("ref_bad", "amount", "-5.00") in found and ("ref_bad", "refunded_at", "2026-03-02 10:00") in found
    assert list(items(tenant)) == [f"{SOURCE}:{good['id']}"]
    stored = sql(tenant, "SELECT count(*) FROM rejects WHERE source = ? AND resolved_run_id IS NULL", [SOURCE])
    assert stored.item() == staged.rejects.height


def test_open_amounts_others_payments_void_drafts_and_refunds(system, tenant):
    paid_at_desk = system.add_invoice("TR-050", "1000.00")
    system.add_payment(paid_at_desk["id"], "300.00", method="card", source="desk")
    void = system.add_invoice("TR-051", "400.00")
    system.change_invoice(void["id"], status="void")
    system.add_invoice("TR-052", "99.00", status="draft")
    refunded = system.add_invoice("TR-053", "600.00", iban="BE68539007547034")
    system.add_payment(refunded["id"], "600.00")
    refund = system.add_refund(refunded["id"], "150.00")
    pull(tenant)
    assert items(tenant) == {
        f"{SOURCE}:{paid_at_desk['id']}": ("invoice", Decimal("700.00")),
        f"{SOURCE}:{void['id']}": ("invoice", Decimal("0.00")),
        f"{SOURCE}:{refunded['id']}": ("invoice", Decimal("0.00")),
        f"{SOURCE}:refund:{refund['id']}": ("refund", Decimal("-150.00")),
    }
    row = sql(tenant, "SELECT * FROM open_item WHERE kind = 'refund'").row(0, named=True)
    assert (row["document_number"], row["partner_iban"], row["bank_account"]) == ("TR-053", "BE68539007547034",
                                                                                  OUR_IBAN)


# --------------------------------------------------------------------------- matching and answering
# One scenario for the module (each pull costs a dlt pipeline run): invoices pulled, bank lines
# matched, the system changed by its users, update files dropped, a push that dies after its first
# POST, a push that finishes, the pushed payments pulled back, and one more push.

class Crash(BaseException):
    """The process dies right after the system took the request, before we record its answer."""


class CrashAfterPost(requests.Session):
    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        if method == "POST":
            raise Crash(url)
        return response


def bank_line(tenant, line_id: str, amount: str, text: str, day: date = date(2026, 3, 9)) -> None:
    values = {"bank_line_id": line_id, "bank_account": OUR_IBAN, "booking_date": day, "amount": Decimal(amount),
              "currency": "EUR", "counterparty_name": "Acme Training Buyers Ltd", "remittance_info": text}
    schema = polars_schema(BankLine)
    with opened(tenant.duckdb_path()) as con:
        insert(con, BankLine, pl.DataFrame([{name: values.get(name) for name in schema}], schema=schema))


def reconcile(tenant, run_id: str) -> None:
    with opened(tenant.duckdb_path()) as con:
        bank, open_items, barred, settled = open_state(con)
        outcome = match(bank, open_items, rejected=barred, settled=settled, as_of=date(2026, 3, 10))
        record(con, outcome, run_id=run_id, now=NOW, as_of=date(2026, 3, 10), alert_after_days=14)


def push(tenant, run_id: str, session=None):
    with opened(tenant.duckdb_path()) as con:
        return push_training(con, tenant, SOURCE, run_id=run_id, now=NOW, session=session, sleep=lambda s: None)


def drop_updates(tenant, name: str, text: str):
    folder = tenant.inbox_path() / "training_updates"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    store = TrainingStore()
    with TrainingServer(store) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINING_API_TOKEN", TOKEN)
        root = tmp_path_factory.mktemp("answered")
        document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
        document.update(data_dir=str(root / "data"), destinations={},
                        sources={SOURCE: {"type": "training", "base_url": server.url, "bank_account": OUR_IBAN}})
        tenant = parse_tenant(document, "test tenant")
        inv = {number: store.add_invoice(number, total)["id"] for number, total in [
            ("TR-060", "1000.00"), ("TR-061", "250.00"), ("TR-080", "120.00"), ("TR-081", "340.00"),
            ("TR-090", "100.00"), ("TR-091", "100.00"), ("TR-092", "100.00"), ("TR-093", "100.00"),
            ("TR-094", "100.00")]}
        pull(tenant)
        for line, (number, amount) in enumerate([("TR-060", "1000.00"), ("TR-061", "250.00"), ("TR-080", "120.00"),
                                                 ("TR-081", "340.00")], start=1):
            # TR-061 is paid first, so its payment is the one pushed when the process dies
            bank_line(tenant, f"B{line}", amount, f"Invoice {number}", date(2026, 3, 8 if line == 2 else 9))
        reconcile(tenant, "recon-1")
        with pytest.raises(Crash):
            push(tenant, "recon-1", session=CrashAfterPost())
        after_crash = sql(tenant, "SELECT invoice_id, status FROM training_payment_push WHERE status = 'sending'")
        store.change_invoice(inv["TR-080"], status="void")
        store.add_payment(inv["TR-081"], "340.00", source="desk")
        store.change_invoice(inv["TR-091"], po_number="PO-1")
        store.change_invoice(inv["TR-092"], po_number="PO-THEIRS")
        store.change_invoice(inv["TR-093"], course="Payroll basics (1 day)")
        drop_updates(tenant, "finance.csv", "invoice_number,po_number,due_date\nTR-090,PO-4471,2026-05-31\n"
                                            "TR-091,PO-1,\nTR-092,PO-OURS,2026-06-30\nTR-093,PO-9,\n")
        drop_updates(tenant, "mixed.csv", "invoice_number,po_number,due_date\nTR-094,PO-2,\nTR-094,,2026-13-01\n"
                                          "TR-999,PO-3,\n,PO-4,\n")
        drop_updates(tenant, "xbroken.csv", "number;po\nTR-094;PO-5\n")
        posts_before = sum(method == "POST" for method, _ in store.requests)
        first = push(tenant, "recon-2")
        pull(tenant, run_id="run-2")
        second = push(tenant, "recon-3")
        yield {"store": store, "tenant": tenant, "inv": inv, "after_crash": after_crash, "first": first,
               "second": second, "posts_before": posts_before}


def test_a_pushed_payment_pulled_back_is_not_counted_twice(answered):
    store, tenant, invoice = answered["store"], answered["tenant"], answered["inv"]["TR-060"]
    assert store.invoice(invoice)["status"] == "paid"
    assert [(p["source"], p["paid_at"], p["reference"]) for p in store.payments_of(invoice)] == [
        ("ledgerflow", "2026-03-09T12:00:00Z", "B1")]
    assert sql(tenant, "SELECT count(*) FROM rejects WHERE source = ? AND stage = 'staging'", [SOURCE]).item() == 0
    assert items(tenant)[f"{SOURCE}:{invoice}"] == ("invoice", Decimal("1000.00"))  # not 0: the match applies it
    with opened(tenant.duckdb_path()) as con:
        _, still_open, _, settled = open_state(con)
    assert f"{SOURCE}:{invoice}" not in still_open["item_id"].to_list()
    assert f"{SOURCE}:{invoice}" in settled["item_id"].to_list()


def test_a_payment_push_survives_a_crash_without_a_duplicate(answered):
    store, tenant = answered["store"], answered["tenant"]
    crashed = answered["after_crash"]
    assert crashed.height == 1  # recorded before the call, answer never recorded
    invoice = crashed["invoice_id"].item()
    assert invoice == answered["inv"]["TR-061"] and len(store.payments_of(invoice)) == 1
    # The next run finds the crashed payment in the system by its bank reference (systems forget
    # idempotency keys after a while) and records it without posting it again.
    assert answered["first"].payments_pushed == 1 and answered["second"].payments_pushed == 0
    posts = [path for method, path in store.requests if method == "POST" and f"/invoices/{invoice}/" in path]
    assert len(posts) == 1  # the one the dead run made
    stored = sql(tenant, "SELECT invoice_id, status, remote_id FROM training_payment_push WHERE status = 'sent' "
                         "ORDER BY invoice_id").rows()
    assert stored == sorted((i, "sent", store.payments_of(i)[0]["id"])
                            for i in (answered["inv"]["TR-060"], answered["inv"]["TR-061"]))


def test_a_void_invoice_is_never_paid_over_and_a_paid_one_is_noted(answered):
    store, inv, first = answered["store"], answered["inv"], answered["first"]
    assert not store.payments_of(inv["TR-080"])
    assert [p["source"] for p in store.payments_of(inv["TR-081"])] == ["desk"]
    assert [c for c in first.conflicts if "TR-080" in c] == [
        "invoice TR-080 is void in the training system, but bank line B3 paid 120.00 EUR on it: nothing pushed; "
        "look at it"]
    assert len(first.noted) == 1 and "TR-081" in first.noted[0]
    assert answered["second"].conflicts == []  # alerted once


def test_updates_are_sent_with_the_version_we_pulled(answered):
    current = answered["store"].invoice(answered["inv"]["TR-090"])
    assert (current["po_number"], current["due_date"], current["version"]) == ("PO-4471", "2026-05-31", 2)
    assert answered["second"].updates_applied == 0  # a file is taken once


def test_412_when_the_system_already_has_our_value_is_done(answered):
    assert answered["store"].invoice(answered["inv"]["TR-091"])["version"] == 2
    status = sql(answered["tenant"], "SELECT status FROM training_update WHERE invoice_number = 'TR-091'").item()
    assert status == "already"


def test_412_when_the_system_changed_the_same_field_the_system_wins(answered):
    current = answered["store"].invoice(answered["inv"]["TR-092"])
    assert (current["po_number"], current["due_date"]) == ("PO-THEIRS", "2026-06-30")  # the other field went through
    conflict = sql(answered["tenant"], "SELECT field, ours, theirs FROM training_conflict WHERE invoice_number = "
                                       "'TR-092'").rows()
    assert conflict == [("po_number", "PO-OURS", "PO-THEIRS")]
    assert any("TR-092: po_number was changed in the training system" in c for c in answered["first"].conflicts)


def test_412_when_only_other_fields_moved_is_retried_once_with_the_new_version(answered):
    store, invoice = answered["store"], answered["inv"]["TR-093"]
    assert (store.invoice(invoice)["po_number"], store.invoice(invoice)["version"]) == ("PO-9", 3)
    patches = [path for method, path in store.requests if method == "PATCH" and path.endswith(invoice)]
    assert len(patches) == 2


def test_bad_update_rows_are_rejected_with_file_row_column_and_value(answered):
    tenant, first = answered["tenant"], answered["first"]
    assert answered["store"].invoice(answered["inv"]["TR-094"])["po_number"] == "PO-2"  # the good row went on
    assert [r for r in first.rejects if r.startswith("mixed.csv")] == [
        "mixed.csv: row 3: column due_date: value '2026-13-01': is not a date YYYY-MM-DD",
        "mixed.csv: row 5: column invoice_number: value None: is empty",
        "mixed.csv: row 4: column invoice_number: value 'TR-999': is not an invoice of source courses "
        "(not pulled yet, or mistyped)",
    ]
    assert [name for name, _ in first.quarantined] == ["xbroken.csv"]
    reason = (tenant.inbox_path() / "quarantine" / "xbroken.csv.reason.txt").read_text()
    assert reason.startswith("xbroken.csv: row 1: the header must name invoice_number")
    stored = sql(tenant, "SELECT record_id, column_name, value FROM rejects WHERE table_name = 'training_update' "
                         "ORDER BY record_id")
    assert stored.rows() == [("mixed.csv:3", "due_date", "2026-13-01"), ("mixed.csv:4", "invoice_number", "TR-999"),
                             ("mixed.csv:5", "invoice_number", None), ("xbroken.csv:1", None, None)]


def test_update_csv_reader_refuses_a_file_without_the_columns():
    rows, problems = read_update_csv("a.csv", "invoice_number,due_date\nX-1,2026-01-31\nX-2,\n")
    assert rows == [{"row_no": 2, "invoice_number": "X-1", "po_number": None, "due_date": date(2026, 1, 31)}]
    assert problems == [(3, "po_number", None, "po_number and due_date are both empty: nothing to change")]
    with pytest.raises(ValueError, match="a.csv: row 1: the header must name invoice_number"):
        read_update_csv("a.csv", "po_number\nP\n")


def test_conflict_rules_field_by_field():
    pulled = {"po_number": None, "due_date": "2026-04-01"}
    ours = {"po_number": "PO-1", "due_date": "2026-05-01"}
    remaining, conflicts = after_precondition_failed(ours, pulled, {"po_number": "PO-X", "due_date": "2026-04-01"})
    assert remaining == {"due_date": "2026-05-01"}
    assert [(c.field, c.ours, c.theirs, c.pulled) for c in conflicts] == [("po_number", "PO-1", "PO-X", None)]
    assert after_precondition_failed(ours, pulled, ours) == ({}, [])
    assert [payment_refusal({"status": s}) for s in ("void", "paid", "partially_paid", "open")] == [
        "void", "paid", None, None]


# --------------------------------------------------------------------------- the fake's own contract

def test_the_fake_refuses_a_patch_without_if_match_and_replays_idempotent_posts(system, server):
    invoice = system.add_invoice("TR-100", "80.00")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{server.url}/api/v1/invoices/{invoice['id']}"
    assert requests.patch(url, json={"po_number": "P"}, headers=headers, timeout=5).status_code == 428
    assert requests.patch(url, json={"course": "x"}, headers={**headers, "If-Match": "1"}, timeout=5).status_code == 400
    body = {"amount": "80.00", "currency": "EUR", "method": "bank_transfer", "paid_at": "2026-03-09", "reference": "B"}
    first = requests.post(url + "/payments", json=body, headers={**headers, "Idempotency-Key": "k1"}, timeout=5)
    second = requests.post(url + "/payments", json=body, headers={**headers, "Idempotency-Key": "k1"}, timeout=5)
    assert (first.status_code, second.json()) == (201, first.json())
    other = requests.post(url + "/payments", json={**body, "amount": "1.00"}, headers={**headers, "Idempotency-Key": "k1"},
                          timeout=5)
    assert other.status_code == 422 and len(system.payments_of(invoice["id"])) == 1
    assert requests.get(f"{server.url}/api/v1/invoices?limit=0", headers=headers, timeout=5).status_code == 400


def test_the_webhook_sender_signs_replays_and_tampers(system):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from sources.local_server import LocalServer

    received: list[tuple[bytes, str | None]] = []

    async def hook(request):
        received.append((await request.body(), request.headers.get("X-Training-Signature")))
        return Response(status_code=204)

    system.add_invoice("TR-110", "10.00")
    with LocalServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        sender = WebhookSender(system, receiver.url + "/hook", "whsec_test", clock=lambda: int(NOW.timestamp()))
        assert sender.burst() == [204]
        event = system.events[0]
        sender.replay(event)
        sender.tampered(event)
        sender.unsigned(event)
        sender.malformed()
    (body, signature), (again, _), (changed, tampered_sig), (_, missing), (broken, _) = received
    assert json.loads(body)["type"] == "invoice.created" and again == body
    assert verify("whsec_test", body, signature, NOW) == int(NOW.timestamp())
    with pytest.raises(ValueError, match="does not match"):
        verify("whsec_test", changed, tampered_sig, NOW)
    assert missing is None
    with pytest.raises(ValueError):
        json.loads(broken)


def test_the_push_client_waits_out_429_and_names_the_variable_on_401(system, server):
    invoice = system.add_invoice("TR-120", "80.00")
    waits: list[float] = []
    client = TrainingClient(server.url, TOKEN, token_env="TRAINING_API_TOKEN", sleep=waits.append)
    system.faults.append(Fault(429, retry_after="7", path="/invoices/"))
    answer = client.update_invoice(invoice["id"], 1, {"po_number": "PO-7"})
    assert (answer.status, answer.body["po_number"], waits) == (200, "PO-7", [7.0])
    system.token_revoked = True
    with pytest.raises(TrainingAuthError, match="environment variable TRAINING_API_TOKEN"):
        client.invoice(invoice["id"])


def test_a_payment_the_system_gave_back_to_our_push_is_ours_whatever_its_label(system, tenant):
    """A system that labels our payments its own way (here "api") must not lower the open amount
    twice: the payment id it answered our push with says it is ours."""
    from warehouse.training_push import ensure_tables

    invoice = system.add_invoice("TR-130", "500.00")
    ours = system.add_payment(invoice["id"], "500.00", source="api", reference="B9")
    with opened(tenant.duckdb_path()) as con:
        ensure_tables(con)
        con.execute("INSERT INTO training_payment_push (push_key, source, match_id, bank_line_id, item_id, invoice_id, "
                    "invoice_number, amount, currency, status, remote_id, run_id, created_at, updated_at) VALUES "
                    "('k', ?, 'm', 'B9', ?, ?, 'TR-130', 500.00, 'EUR', 'sent', ?, 'r', ?, ?)",
                    [SOURCE, f"{SOURCE}:{invoice['id']}", invoice["id"], ours["id"], NOW, NOW])
    pull(tenant)
    assert items(tenant)[f"{SOURCE}:{invoice['id']}"] == ("invoice", Decimal("500.00"))
