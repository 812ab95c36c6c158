"""The webhook receiver on 127.0.0.1: what it takes, what it refuses (and keeps, and logs), and
that a burst of events asks for one run. No Prefect: a counting starter stands for it."""

from __future__ import annotations

import json
import logging
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import tomli_w

from flows.events import claim_run_request, events_path
from flows.webhooks import create_app
from schemas.tenant import PACKAGED_TENANTS, load_tenant
from sources.local_server import LocalServer
from sources.webhooks import sign

SECRET = "whsec_test_training"
NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
HEADER = "X-Training-Signature"


class CountingStarter:
    """Stands for Prefect: counts the runs asked for (thread-safe: the receiver's threads call it)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, tenant, reason, request_id) -> bool:
        with self._lock:
            self.started.append(request_id)
        return True


@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    root = tmp_path_factory.mktemp("webhooks")
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(root / "data"), destinations={}, sources={
        "training": {"type": "training", "webhook_secret_env": "TEST_TRAINING_SECRET"},
        "unset": {"type": "training", "webhook_secret_env": "TEST_UNSET_SECRET"},
        "stripe": {"type": "stripe"}})
    path = root / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


@pytest.fixture(scope="module")
def starter():
    return CountingStarter()


def receiver(tenant, starter):
    return LocalServer(create_app(tenant, starter, clock=lambda: NOW, environ={"TEST_TRAINING_SECRET": SECRET}))


@pytest.fixture(scope="module")
def server(tenant, starter):
    with receiver(tenant, starter) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:  # not money
        yield http


def event(event_id: str, kind: str = "invoice.paid", **data) -> bytes:
    return json.dumps({"id": event_id, "type": kind, "created": int(NOW.timestamp()),
                       "data": {"object": {"id": "inv_1", "amount_paid": 12000, **data}}}).encode()


def post(client, body: bytes, *, path: str = "/webhooks/demo/training", secret: str = SECRET,
         at: datetime = NOW, signature: str | None = None):
    headers = {HEADER: signature if signature is not None else sign(secret, body, int(at.timestamp())),
               "Content-Type": "application/json", "Authorization": "Bearer not-for-the-logs",
               "X-Auth-Token": "not-for-the-files", "X-Webhook-Secret": "whsec_not_for_the_files"}
    return client.post(path, content=body, headers=headers)


def rejected(tenant) -> set:
    folder = tenant.inbox_path() / "webhooks" / "rejected"
    return set(folder.glob("*.json")) if folder.is_dir() else set()


def test_a_signed_event_lands_in_the_inbox_and_asks_for_a_run(tenant, client, starter):
    claim_run_request(tenant, "earlier-run")
    before = len(starter.started)
    body = event("evt_1AbC")
    answer = post(client, body)
    assert answer.status_code == 200 and answer.json() == {"status": "accepted", "id": "evt_1AbC", "run": "started"}
    stored = json.loads((tenant.inbox_path() / "webhooks" / "training" / "evt_1AbC.json").read_text())
    assert stored == {"received_at": NOW.isoformat(), "tenant": "demo", "source": "training",
                      "event": json.loads(body)}
    assert len(starter.started) == before + 1
    assert not list((tenant.inbox_path() / "webhooks" / "training").glob(".*"))  # no temporary left


def _signed_unsafe(event_id):
    return json.dumps({"id": event_id, "type": "invoice.paid"}).encode()


REFUSALS = {
    "bad signature": (dict(body=event("evt_bad"), secret="whsec_someone_else"), 401, "does not match the body"),
    "no signature": (dict(body=event("evt_unsigned"), signature=""), 401, "carries no signature"),
    "garbled signature": (dict(body=event("evt_garbled"), signature="sha256=abc"), 401, "no t= and v1= parts"),
    "stale timestamp": (dict(body=event("evt_old"), at=NOW - timedelta(seconds=301)), 401, "301 s old"),
    "future timestamp": (dict(body=event("evt_future"), at=NOW + timedelta(minutes=10)), 401, "in the future"),
    "malformed JSON": (dict(body=b'{"id": "evt_x", "type": '), 400, "not UTF-8 JSON"),
    "not UTF-8": (dict(body='{"id": "évt", "type": "x"}'.encode("latin-1")), 400, "not UTF-8 JSON"),
    "JSON array": (dict(body=b'[{"id": "evt_x"}]'), 400, "not an object: list"),
    "missing id": (dict(body=b'{"type": "invoice.paid"}'), 400, "event 'id': expected a non-empty string"),
    "numeric id": (dict(body=b'{"id": 42, "type": "invoice.paid"}'), 400, "event 'id': expected a non-empty"),
    "missing type": (dict(body=b'{"id": "evt_no_type"}'), 400, "event 'type': expected a non-empty string"),
    "path in id": (dict(body=_signed_unsafe("../../etc/passwd")), 400, "event id '../../etc/passwd'"),
    "slash in id": (dict(body=_signed_unsafe("evt/1")), 400, "event id 'evt/1'"),
    "dots in id": (dict(body=_signed_unsafe("evt..1")), 400, "event id 'evt..1'"),
    "hidden id": (dict(body=_signed_unsafe(".evt")), 400, "event id '.evt'"),
    "control char in id": (dict(body=_signed_unsafe("evt\n1")), 400, "event id 'evt\\n1'"),
    "oversized body": (dict(body=b'{"id": "evt_big", "type": "x", "pad": "' + b"x" * 1_000_000 + b'"}'), 413,
                       "at most 1000000 are taken"),
    "unknown tenant": (dict(body=event("evt_t"), path="/webhooks/other/training"), 404, "tenant 'other' is not"),
    "unknown source": (dict(body=event("evt_s"), path="/webhooks/demo/nowhere"), 404, "no source 'nowhere'"),
    "source without webhooks": (dict(body=event("evt_st"), path="/webhooks/demo/stripe"), 404, "no source 'stripe'"),
    "secret not configured": (dict(body=event("evt_u"), path="/webhooks/demo/unset"), 503, "set TEST_UNSET_SECRET"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_request_that_is_not_right_is_refused_logged_and_kept(case, tenant, client, caplog):
    arguments, status, reason = REFUSALS[case]
    before = rejected(tenant)
    with caplog.at_level(logging.WARNING, logger="ledgerflow.webhooks"):
        answer = post(client, **arguments)
    assert answer.status_code == status and reason in answer.json()["error"]
    assert any(reason in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    (sidecar,) = rejected(tenant) - before
    kept = json.loads(sidecar.read_text())
    assert kept["status"] == status and reason in kept["reason"] and kept["received_at"] == NOW.isoformat()
    assert sidecar.with_suffix(".body").read_bytes() == arguments["body"][:65_536]
    assert kept["headers"]["authorization"] == "(redacted)" and "v1=" not in kept["headers"][HEADER.lower()]
    assert "not-for-the" not in sidecar.read_text() and kept["headers"]["x-auth-token"] == "(redacted)"
    assert not (tenant.inbox_path() / "webhooks" / "training" / "evt_bad.json").exists()


def test_a_replayed_event_is_not_taken_again_even_after_a_restart(tenant, client, starter, caplog):
    body = event("evt_replay")
    assert post(client, body).json()["status"] == "accepted"
    runs = len(starter.started)
    with caplog.at_level(logging.WARNING, logger="ledgerflow.webhooks"):
        again = post(client, body, at=NOW - timedelta(seconds=60))  # re-signed, as a sender's retry is
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert "evt_replay was taken at" in caplog.text and "not taken again" in caplog.text
    with receiver(tenant, starter) as restarted, httpx.Client(base_url=restarted.url) as fresh:
        assert post(fresh, body).json()["status"] == "duplicate"
        changed = post(fresh, event("evt_replay", amount_paid=1))
    assert changed.status_code == 409 and "with another body" in changed.json()["error"]
    assert len(starter.started) == runs
    assert json.loads((tenant.inbox_path() / "webhooks" / "training" / "evt_replay.json").read_text())[
        "event"] == json.loads(body)


def test_a_burst_of_50_events_asks_for_one_run_and_the_next_after_the_claim_for_another(tenant, client, starter):
    claim_run_request(tenant, "earlier-run")
    before = len(starter.started)
    bodies = [event(f"evt_burst_{n:02d}") for n in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda body: post(client, body), bodies))
    assert [a.status_code for a in answers] == [200] * 50
    assert sorted(a.json()["run"] for a in answers) == ["pending"] * 49 + ["started"]
    assert len(starter.started) == before + 1
    assert len(list((tenant.inbox_path() / "webhooks" / "training").glob("evt_burst_*.json"))) == 50
    claimed = claim_run_request(tenant, "run-1")
    assert claimed["events"] == 50 and claimed["request_id"] == starter.started[-1]
    assert json.loads((events_path(tenant) / "run-claimed.json").read_text())["claimed_by"] == "run-1"
    assert post(client, event("evt_after_claim")).json()["run"] == "started"  # the run may have read before it
    assert len(starter.started) == before + 2
