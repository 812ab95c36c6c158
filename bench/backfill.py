"""Backfill: three years of daily closes for the demo tenant, through the Prefect ``backfill`` flow.

Ours: ``backfill(tenant, start, end, period="day")`` with the embedded demo PMS (its data is generated
in-process, as a slow PMS would deliver it): extract the window once, stage, build every day's
journal, publish one file per day. Baseline: extracting and staging the same window alone, i.e. the
data movement that any close needs; the difference, divided by the number of days, is the per-period
overhead. Target: three years (1,096 days) in under 5 minutes.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path

from bench.common import DATA, peak_mb, report, run_pair

SIZES = {"smoke": 14, "full": 1096}
FIRST_DAY = date(2023, 1, 1)


def tenant_file(days: int, role: str) -> Path:
    import tomli_w

    from schemas.tenant import PACKAGED_TENANTS

    root = DATA / f"backfill-{days}-{role}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document["data_dir"] = str(root / "data")
    document["sources"]["pms"].update(history_start=FIRST_DAY.isoformat(), history_days=days + 2)
    document["destinations"] = {"journal_csv": {"type": "csv", "path": str(root / "exports"), "schedule": "daily"}}
    path = root / "demo.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def ours(days: int) -> dict:
    import time

    from prefect import flow

    from flows.backfill import backfill

    @flow
    def warm_up() -> None:  # starts Prefect's server if none is configured; not part of the backfill
        return None

    warm_up()
    path = tenant_file(days, "ours")
    end = FIRST_DAY + timedelta(days=days - 1)
    started = time.perf_counter()
    state = backfill(str(path), FIRST_DAY, end, "day", return_state=True)
    seconds = time.perf_counter() - started
    assert state.is_completed(), state.message
    summary = state.result()
    files = sum(1 for e in summary.exports for f in e.files if f.new_batch)
    assert files == days, f"{files} files for {days} days"
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak_mb(), "rows": sum(e.rows for e in summary.extracts),
            "files": files}


def baseline(days: int) -> dict:
    import time
    from datetime import UTC, datetime

    from schemas.tenant import load_tenant
    from sources.extract import extract
    from transforms.periods import utc_window
    from warehouse.db import opened
    from warehouse.staging import stage_source

    tenant = load_tenant(tenant_file(days, "baseline"))
    end = FIRST_DAY + timedelta(days=days - 1)
    started = time.perf_counter()
    window = utc_window(FIRST_DAY - timedelta(days=1), end + timedelta(days=1), tenant.timezone,
                        tenant.business_day_cutoff)
    extracted = extract(tenant, "pms", posted_window=window)
    with opened(tenant.duckdb_path()) as con:
        stage_source(con, tenant, "pms", extracted.load_ids, run_id="baseline", now=datetime.now(UTC))
    return {"seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": peak_mb()}


def main(argv: list[str]) -> None:
    env = {"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_LOGGING_SERVER_LEVEL": "CRITICAL"}
    measured = run_pair("backfill", SIZES, argv, ours, baseline, env=env)
    if measured:
        days, mine, bare = measured
        per_period_ms = round(1000 * (mine["seconds"] - bare["seconds"]) / days, 1)
        report("backfill", days, mine, "extract + stage the same window", bare, mine["rows"], periods=days,
               per_period_ms=per_period_ms, target_seconds=300)
        for side in ("ours", "baseline"):
            shutil.rmtree(DATA / f"backfill-{days}-{side}", ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
