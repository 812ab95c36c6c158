"""Extraction: N charge records from a local paginated PMS into DuckDB, ours against a bare dlt pipeline.

The fake (``bench.extract_server``) serves the demo PMS API from its own process, pages of 1000,
records made from their index; both sides read the same pages from the same server.

Ours: ledgerflow's real path, ``sources.extract.extract`` for a demo tenant whose ``demo_pms``
source points at the fake -- the audited HTTP session (the audit log written to a file), the
``RecordChecker`` map step (exact decimals and times, record hash, duplicate report), the
incremental cursor, the Arrow tables with decimal128 money, the merge into ``raw_pms.charges``.

Baseline: what a careful data engineer writes in ten lines -- ``rest_api_source`` with the same
endpoint, paginator, page size and ``updated_since`` incremental cursor, merged on ``id``, the
default normalizer, and decimal hints on the money columns (without them DuckDB would get the
amounts as text: not the same data). No checks. It writes Parquet load files: dlt's default for
DuckDB, one big INSERT statement per file, took 55 s and 4.6 GB for 100,000 records here (a
million would not fit in memory), and JSONL was slower than Parquet -- so the baseline is the
fastest of the three. Both sides must load every record.

Reported besides wall seconds: CPU seconds of each side (wall time on this busy 2-core machine
varies with what else runs) and the seconds of each dlt step.

Target (issue 8): ours within 15 % of the baseline at 1,000,000 records.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from bench.common import peak_mb, report, run_pair

SIZES = {"smoke": 5_000, "full": 1_000_000}
PAGE_SIZE = 1000
URL_ENV = "LEDGERFLOW_BENCH_EXTRACT_URL"
SINCE = datetime(2025, 12, 31, tzinfo=UTC)
BASELINE = ("bare dlt rest_api_source -> DuckDB: same endpoint, cursor paginator, page size and updated_since "
            "incremental, merge on id, decimal hints on amount/quantity/vat_rate, default normalizer, parquet load "
            "files, no checks")


def _timed(run) -> tuple[float, float, object]:
    """Wall and CPU seconds of ``run()`` (CPU time is steadier on a busy machine), and its result."""
    import time

    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    return round(time.perf_counter() - started, 3), round(time.process_time() - cpu, 3), result


def _steps(pipeline) -> dict[str, float]:
    """Seconds per dlt step of the pipeline's last run (extract, normalize, load)."""
    trace = pipeline.last_trace
    return {step.step: round((step.finished_at - step.started_at).total_seconds(), 1)  # not money
            for step in trace.steps if step.step in ("extract", "normalize", "load")}


def _loaded(database, table: str) -> int:
    from warehouse.db import opened, query

    with opened(database) as con:
        return query(con, f"SELECT count(*) AS n FROM {table}").item()


def ours(size: int) -> dict:
    import tempfile
    import tomllib
    from pathlib import Path

    import dlt.sources.rest_api  # noqa: F401 -- imported before the clock starts, as the baseline's are

    import sources.demo_pms  # noqa: F401
    from schemas.tenant import PACKAGED_TENANTS, parse_tenant
    from sources.extract import extract, pipeline_for

    with tempfile.TemporaryDirectory() as folder:
        document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
        document["data_dir"] = str(Path(folder) / "data")
        document["sources"]["pms"].update(embedded=False, base_url=os.environ[URL_ENV], page_size=PAGE_SIZE)
        tenant = parse_tenant(document, "bench")
        os.environ["LEDGERFLOW_HTTP_LOG"] = str(Path(folder) / "http.jsonl")
        seconds, cpu, result = _timed(lambda: extract(tenant, "pms", updated_since=SINCE))
        requests = sum(1 for _ in (Path(folder) / "http.jsonl").open(encoding="utf-8"))
        stored = _loaded(tenant.duckdb_path(), "raw_pms.charges")
        steps = _steps(pipeline_for(tenant, "pms"))
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_mb(), "stored": stored, "requests": requests,
            "steps": steps}


def baseline(size: int) -> dict:
    import tempfile
    from pathlib import Path

    import dlt
    from dlt.sources.rest_api import rest_api_source

    money = {"amount": {"data_type": "decimal", "precision": 18, "scale": 2},
             "quantity": {"data_type": "decimal", "precision": 12, "scale": 3},
             "vat_rate": {"data_type": "decimal", "precision": 5, "scale": 2}}
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bare.duckdb"
        source = rest_api_source({
            "client": {"base_url": os.environ[URL_ENV] + "/",
                       "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"}},
            "resources": [{"name": "charges", "primary_key": "id", "write_disposition": "merge", "columns": money,
                           "endpoint": {"path": "charges", "data_selector": "data", "params": {"limit": PAGE_SIZE},
                                        "incremental": {"start_param": "updated_since", "cursor_path": "updated_at",
                                                        "initial_value": "2025-12-31T00:00:00Z"}}}],
        })
        pipeline = dlt.pipeline("bench_bare", destination=dlt.destinations.duckdb(str(database)),
                                dataset_name="raw", pipelines_dir=str(Path(folder) / "dlt"))
        seconds, cpu, _ = _timed(lambda: pipeline.run(source, loader_file_format="parquet"))
        stored = _loaded(database, "raw.charges")
        steps = _steps(pipeline)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_mb(), "stored": stored, "steps": steps}


def main(argv: list[str]) -> None:
    import subprocess

    from bench.common import child_role, parse_size

    if child_role(argv):
        run_pair("extract", SIZES, argv, ours, baseline)
        return
    _, size = parse_size("extract", SIZES, argv)
    server = subprocess.Popen([sys.executable, "-m", "bench.extract_server", str(size)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        if not url:
            raise SystemExit("bench.extract_server did not start")
        size, mine, bare = run_pair("extract", SIZES, argv, ours, baseline, env={URL_ENV: url})
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    if not mine["stored"] == bare["stored"] == size:
        raise SystemExit(f"rows loaded: ours {mine['stored']}, baseline {bare['stored']}, expected {size}")
    report("extract", size, mine, BASELINE, bare, size, stored=mine["stored"], baseline_stored=bare["stored"],
           requests=mine["requests"], page_size=PAGE_SIZE, cpu_seconds=mine["cpu_seconds"],
           baseline_cpu_seconds=bare["cpu_seconds"], steps=mine["steps"], baseline_steps=bare["steps"],
           cpu_ratio_vs_baseline=round(mine["cpu_seconds"] / bare["cpu_seconds"], 2), target_ratio=1.15)


if __name__ == "__main__":
    main(sys.argv[1:])
