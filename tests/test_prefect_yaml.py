"""prefect.yaml is read by `prefect deploy`, which ignores unknown keys silently: check it all here."""

import importlib
from pathlib import Path

import pytest
import yaml

from schemas.tenant import load_tenant

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = DOCUMENT["deployments"]
TOP_KEYS = {"name", "prefect-version", "build", "push", "pull", "definitions", "deployments"}
DEPLOYMENT_KEYS = {"name", "description", "entrypoint", "parameters", "tags", "schedules", "work_pool", "version",
                   "concurrency_limit", "enforce_parameter_schema", "pull", "job_variables", "paused", "triggers"}
SCHEDULE_KEYS = {"cron", "timezone", "active", "day_or", "parameters", "slug"}
WORK_POOL_KEYS = {"name", "work_queue_name", "job_variables"}


def load_entrypoint(entrypoint: str):
    path, name = entrypoint.split(":")
    assert (ROOT / path).is_file(), f"{entrypoint}: {path} does not exist"
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def test_only_keys_prefect_knows_are_used():
    import prefect

    assert set(DOCUMENT) <= TOP_KEYS
    assert DOCUMENT["prefect-version"] == prefect.__version__
    for deployment in DEPLOYMENTS:
        assert set(deployment) <= DEPLOYMENT_KEYS, deployment["name"]
        assert set(deployment["work_pool"]) <= WORK_POOL_KEYS, deployment["name"]
        for schedule in deployment.get("schedules", []):
            assert set(schedule) <= SCHEDULE_KEYS, deployment["name"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_is_a_flow_and_parameters_fit_it(deployment):
    from prefect import Flow

    flow = load_entrypoint(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    parameters = deployment.get("parameters", {})
    assert set(parameters) <= set(flow.parameters.properties), f"unknown parameters for {flow.name}"
    flow.validate_parameters(parameters)  # raises on a wrong type or value
    load_tenant(parameters["tenant"])
    assert f"tenant:{parameters['tenant']}" in deployment["tags"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_schedules_are_valid_crons_in_the_tenants_time_zone(deployment):
    from prefect.client.schemas.schedules import CronSchedule

    tenant = load_tenant(deployment["parameters"]["tenant"])
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert schedule["timezone"] == tenant.timezone


def test_the_demo_tenant_has_daily_weekly_and_monthly_deployments_and_a_backfill():
    by_name = {d["name"]: d for d in DEPLOYMENTS}
    assert by_name["demo-daily-close"]["entrypoint"] == "flows/daily_close.py:daily_close"
    assert by_name["demo-weekly-close"]["parameters"]["period"] == "week"
    assert by_name["demo-monthly-close"]["parameters"]["period"] == "month"
    assert "schedules" not in by_name["demo-backfill"]
    tenant = load_tenant("demo")
    for period, schedule in (("week", "weekly"), ("month", "monthly")):
        assert any(d.schedule == schedule for d in tenant.destinations.values()), period


def test_reconcile_deployments_and_their_event_trigger():
    """A new bank file or invoice (the events `ledgerflow reconcile drop` emits) starts a reconcile run
    of that tenant, a webhook too; one at a time (concurrency limit 1, a run asked for meanwhile waits)."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from flows.events import WEBHOOK_EVENT, event_name, tenant_resource

    by_name = {d["name"]: d for d in DEPLOYMENTS}
    for cadence in ("daily", "weekly", "monthly"):
        assert by_name[f"demo-reconcile-{cadence}"]["entrypoint"] == "flows/reconcile.py:reconcile"
    daily = by_name["demo-reconcile-daily"]
    assert daily["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    (trigger,) = [DeploymentEventTrigger(**t) for t in daily["triggers"]]
    assert trigger.match.get("prefect.resource.id") == [tenant_resource("demo")["prefect.resource.id"]]
    assert {event_name("bank"), event_name("items"), WEBHOOK_EVENT} == set(trigger.expect)
    assert trigger.parameters["tenant"] == "demo"
