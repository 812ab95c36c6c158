"""The Prefect flows for real, on one test harness per session."""

import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest
import tomli_w

from flows.closing import close_periods
from transforms.periods import periods_between

pytestmark = pytest.mark.usefixtures("prefect_api")

D1, D2 = date(2026, 3, 10), date(2026, 3, 11)


def artifact(state, key: str) -> str:
    """The markdown of the artifact ``key`` that the run behind ``state`` published."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    run = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[run])))
    assert len(found) == 1, f"{key}: {len(found)} artifacts for run {run}"
    return found[0].data


def test_daily_close_completes_and_publishes_its_artifacts(hotel):
    from flows.daily_close import daily_close

    hotel.morning_after(D1)
    state = daily_close(str(hotel.tenant_file), D1, return_state=True)
    assert state.is_completed() and state.name == "Completed"
    summary = state.result()
    assert [f.path.name for e in summary.exports for f in e.files] == ["journal-demo-2026-03-10.csv"]
    balance = artifact(state, "demo-trial-balance")
    assert "| 706100 | Hébergement |" in balance and "**Total**" in balance
    assert "journal-demo-2026-03-10.csv" in artifact(state, "demo-export-manifest")
    assert "Open rejects: 0" in artifact(state, "demo-rejects")


def test_a_run_with_rejects_says_so_in_its_final_state(hotel):
    from flows.daily_close import daily_close

    hotel.add_charge("BAD", hotel.local(D1, 12), amount="1.234")
    hotel.morning_after(D1)
    state = daily_close(str(hotel.tenant_file), D1, return_state=True)
    assert state.is_completed() and state.name == "CompletedWithRejects"
    assert "days held back from export: 2026-03-10" in state.message
    assert "| BAD | amount | 1.234 | amount '1.234' has more than 2 decimals |" in artifact(state, "demo-rejects")


def test_a_tenant_file_with_an_unknown_account_fails_the_run_with_the_place(hotel, tmp_path):
    from flows.daily_close import daily_close

    document = tomllib.loads(hotel.tenant_file.read_text())
    document["mapping"]["rounding_account"] = "999"
    broken = tmp_path / "broken.toml"
    broken.write_text(tomli_w.dumps(document))
    state = daily_close(str(broken), D1, return_state=True)
    assert state.is_failed()
    assert "broken.toml: mapping.rounding_account: account 999 is not in the chart" in str(
        state.result(raise_on_failure=False))


def test_the_weekly_deployment_closes_last_week_from_the_embedded_pms(tmp_path):
    """What `demo-weekly-close` runs: backfill(tenant, period=week), dates left to the flow."""
    from flows.backfill import backfill

    document = tomllib.loads(Path("tenants/demo.toml").read_text())
    document["data_dir"] = str(tmp_path / "data")
    document["sources"]["pms"]["rooms"] = 8
    for destination in document["destinations"].values():
        destination["path"] = str(tmp_path / destination["path"])
    tenant_file = tmp_path / "demo.toml"
    tenant_file.write_text(tomli_w.dumps(document))
    state = backfill(str(tenant_file), period="week", return_state=True)
    assert state.is_completed(), state.message
    files = sorted(p.name for p in (tmp_path / "var/demo/exports/weekly").glob("*.csv"))
    assert len(files) == 1 and files[0].startswith("journal-demo-") and "-W" in files[0]
    assert not (tmp_path / "var/demo/exports/daily").exists()  # a weekly run feeds weekly destinations only


def test_a_backfill_resumes_after_a_crash_without_duplicating_anything(hotel, tmp_path):
    from flows.backfill import backfill

    start, end = date(2026, 3, 2), date(2026, 3, 8)

    def worker_lost_after_three_days(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("worker lost")

    hotel.morning_after(end + timedelta(days=20))
    with pytest.raises(RuntimeError, match="worker lost"):
        close_periods(hotel.tenant, periods_between(start, end, "day"), window=True, run_id="crashed",
                      on_period=worker_lost_after_three_days)
    before = {p.name: p.stat().st_mtime_ns for p in hotel.export_dir().iterdir()}
    assert len([n for n in before if n.endswith(".csv")]) == 3

    state = backfill(str(hotel.tenant_file), start, end, "day", return_state=True)
    assert state.is_completed()
    after = {p.name: p.stat().st_mtime_ns for p in hotel.export_dir().iterdir()}
    assert {n: after[n] for n in before} == before  # what was published stays untouched
    assert len([n for n in after if n.endswith(".csv")]) == 7
    assert hotel.sql("SELECT count(*), count(DISTINCT object_id) FROM export_log").row(0) == (7, 7)
