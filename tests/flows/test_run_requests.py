"""Run requests: a burst of events makes one run, a claimed request lets the next event start
another, a lost one is started again; and, with a real Prefect, a burst of 50 webhooks through
the receiver creates exactly one flow run of the reconcile deployment."""

from __future__ import annotations

import json
import logging
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import tomli_w

from flows.events import (
    RunReason,
    claim_run_request,
    deployment_starter,
    drop,
    events_path,
    request_run,
    starter_from,
)
from flows.webhooks import create_app
from schemas.tenant import PACKAGED_TENANTS, load_tenant
from sources.local_server import LocalServer
from sources.webhooks import sign

NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
REASON = RunReason("ledgerflow.webhook.received", "webhook", {"source": "training", "id": "evt_1"})


@pytest.fixture
def tenant(tmp_path):
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={},
                    sources={"training": {"type": "training", "webhook_secret_env": "TEST_TRAINING_SECRET"}})
    path = tmp_path / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def counting(result=True):
    started = []

    def starter(tenant, reason, request_id):
        started.append((reason.trigger, request_id))
        if isinstance(result, Exception):
            raise result
        return result

    return starter, started


def marker(tenant) -> dict | None:
    path = events_path(tenant) / "run-requested.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_events_join_the_request_until_a_run_claims_it(tenant):
    starter, started = counting()
    outcomes = [request_run(tenant, REASON, starter, now=NOW + timedelta(seconds=n)).outcome for n in range(3)]
    assert outcomes == ["started", "pending", "pending"] and len(started) == 1
    assert marker(tenant)["events"] == 3 and len(marker(tenant)["reasons"]) == 3
    claimed = claim_run_request(tenant, "run-a", now=NOW)
    assert claimed["claimed_by"] == "run-a" and claimed["trigger"] == "webhook" and marker(tenant) is None
    assert claim_run_request(tenant, "run-b") is None  # nothing asked for since
    assert request_run(tenant, REASON, starter, now=NOW).outcome == "started" and len(started) == 2


def test_a_request_nobody_claimed_is_started_again_by_the_next_event(tenant, caplog):
    starter, started = counting()
    first = request_run(tenant, REASON, starter, now=NOW)
    assert request_run(tenant, REASON, starter, now=NOW + timedelta(minutes=15)).outcome == "pending"
    with caplog.at_level(logging.WARNING, logger="ledgerflow.events"):
        again = request_run(tenant, REASON, starter, now=NOW + timedelta(minutes=16))
    assert again.outcome == "started" and again.request_id != first.request_id and len(started) == 2
    assert f"({first.request_id}) was never claimed" in caplog.text


@pytest.mark.parametrize("result", [False, ConnectionError("Prefect is down")], ids=["no server", "start raised"])
def test_a_failed_start_leaves_nothing_pending_so_the_next_event_tries_again(tenant, caplog, result):
    starter, started = counting(result)
    with caplog.at_level(logging.WARNING, logger="ledgerflow.events"):
        outcome = request_run(tenant, REASON, starter, now=NOW)
    assert outcome.outcome == "waiting" and not outcome.requested and marker(tenant) is None
    assert "the next scheduled run takes it" in caplog.text
    assert request_run(tenant, REASON, starter, now=NOW).outcome == "waiting" and len(started) == 2


def test_without_a_starter_the_inbox_waits_for_the_schedule(tenant):
    assert request_run(tenant, REASON, None).outcome == "waiting" and marker(tenant) is None


@pytest.mark.parametrize("spec", ["prefect:", "prefect:demo-reconcile-daily", "prefect:a/b/c", "emit", "Prefect:a/b"])
def test_a_starter_is_named_in_one_of_three_ways(spec):
    assert starter_from("none") is None and starter_from("event").__name__ == "emit_starter"
    assert callable(starter_from("prefect:reconcile/demo-reconcile-daily"))
    with pytest.raises(ValueError, match=f"starter {spec!r}: expected prefect:<flow>/<deployment>"):
        starter_from(spec)


def test_dropped_files_emit_one_event_per_burst(tenant, tmp_path, prefect_api):
    for name in ("one.csv", "two.csv"):
        (tmp_path / name).write_text("bank_line_id\n", encoding="utf-8")
        assert drop(tenant, "bank", tmp_path / name)[1]  # the second joins the run the first asked for
    assert marker(tenant)["events"] == 2 and [r["file"] for r in marker(tenant)["reasons"]] == ["one.csv", "two.csv"]


def test_a_burst_of_50_webhooks_creates_one_run_of_the_reconcile_deployment(tenant, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flows.reconcile import reconcile

    deployment_id = reconcile.to_deployment(name="webhook-burst", parameters={"tenant": "demo"}).apply()
    app = create_app(tenant, deployment_starter("reconcile/webhook-burst"),
                     environ={"TEST_TRAINING_SECRET": "whsec_burst"})
    bodies = [json.dumps({"id": f"evt_{n:02d}", "type": "invoice.paid", "created": 0, "data": {"object": {}}}).encode()
              for n in range(50)]
    with LocalServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:  # not money
        def post(body: bytes) -> httpx.Response:
            signature = sign("whsec_burst", body, int(datetime.now(UTC).timestamp()))
            return client.post("/webhooks/demo/training", content=body, headers={"X-Training-Signature": signature})

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(post, bodies))
    assert [a.status_code for a in answers] == [200] * 50
    assert sorted(a.json()["run"] for a in answers) == ["pending"] * 49 + ["started"]
    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    assert len(runs) == 1 and runs[0].parameters == {"tenant": "demo", "trigger": "webhook"}
    assert runs[0].state.is_scheduled()  # no worker here: created is what counts
