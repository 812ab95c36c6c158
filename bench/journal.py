"""Journal build from DuckDB: N sales lines (+ N/5 payments) over three years of business days.

Ours, end to end: ``warehouse.journals.close_days`` on a fresh copy of the database -- the DuckDB
aggregation, the Polars journal build, versioning, Pandera validation and storing every entry, as a
backfill does. ``build_seconds`` is the build alone (``build_from_db``). Baseline: the bare DuckDB
GROUP BY of the same data, fetched the same way. Target: >= 2 million sales lines/s end to end and
within 2x of the baseline.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta

from bench.common import DATA, best_of, peak_mb, report, run_pair

SIZES = {"smoke": 100_000, "full": 10_000_000}
FIRST_DAY = date(2023, 1, 1)
DAYS = 1096
CATEGORIES = [("ROOM", "10.00"), ("BREAKFAST", "10.00"), ("FOOD", "10.00"), ("BEVERAGE", "20.00"),
              ("SPA", "20.00"), ("CITY_TAX", "0.00"), ("CANCEL_FEE", "10.00")]
METHODS = [("payment", "CARD"), ("payment", "CASH"), ("payment", "BANK_TRANSFER"), ("payment", "CITY_LEDGER"),
           ("payment", "DEPOSIT"), ("deposit", "CARD")]


def database(rows: int):
    from warehouse.db import schema_fingerprint

    return DATA / f"journal-{rows}-{schema_fingerprint()}.duckdb"  # regenerated when the tables change


def generate(rows: int) -> None:
    """Deterministic data straight into the canonical tables (no PMS round trip: that is not timed here)."""
    from warehouse.db import opened, run

    path = database(rows)
    if path.exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    categories = ", ".join(f"('{c}', {r}::DECIMAL(5,2))" for c, r in CATEGORIES)
    methods = ", ".join(f"('{k}', '{m}')" for k, m in METHODS)
    with opened(partial) as con:
        run(con, f"""
            INSERT INTO sales_line
            WITH c AS (SELECT row_number() OVER () - 1 AS k, * FROM (VALUES {categories}) t(category, vat_rate))
            SELECT 'pms/' || i, 'pms', i::VARCHAR, ts, d, ts, c.category, NULL, NULL, NULL, 1::DECIMAL(12,3),
                   ((hash(i, 1) % 40000)::BIGINT - 2000)::DECIMAL(18,0) * 0.01::DECIMAL(3,2), c.vat_rate, 'EUR'
            FROM (SELECT i, DATE '{FIRST_DAY}' + (i % {DAYS})::INTEGER AS d,
                         TIMESTAMPTZ '{FIRST_DAY} 10:00:00+00' + to_days((i % {DAYS})::INTEGER) AS ts
                  FROM range({rows}) r(i)) s
            JOIN c ON c.k = hash(i, 2) % {len(CATEGORIES)}
        """)
        run(con, f"""
            INSERT INTO payment
            WITH m AS (SELECT row_number() OVER () - 1 AS k, * FROM (VALUES {methods}) t(kind, method))
            SELECT 'pms/P' || i, 'pms', 'P' || i, ts, d, ts, m.kind, m.method,
                   ((hash(i, 3) % 90000)::BIGINT)::DECIMAL(18,0) * 0.01::DECIMAL(3,2), 'EUR', NULL,
                   CASE WHEN m.method = 'CITY_LEDGER' THEN 'C00' || (i % 8)::VARCHAR END,
                   CASE WHEN m.method = 'CITY_LEDGER' THEN 'Company ' || (i % 8)::VARCHAR END, NULL
            FROM (SELECT i, DATE '{FIRST_DAY}' + (i % {DAYS})::INTEGER AS d,
                         TIMESTAMPTZ '{FIRST_DAY} 11:00:00+00' + to_days((i % {DAYS})::INTEGER) AS ts
                  FROM range({rows // 5}) r(i)) s
            JOIN m ON m.k = hash(i, 4) % {len(METHODS)}
        """)
        run(con, "CHECKPOINT")
    partial.rename(path)


def dates() -> list[date]:
    return [FIRST_DAY + timedelta(days=n) for n in range(DAYS)]


def ours(rows: int) -> dict:
    import shutil
    from contextlib import contextmanager
    from datetime import UTC, datetime

    from schemas.tables import JournalLine, empty_frame
    from schemas.tenant import load_tenant
    from schemas.validate import validate_rows
    from warehouse.db import opened, query
    from warehouse.journals import build_from_db, close_days

    tenant = load_tenant("demo")
    validate_rows(JournalLine, empty_frame(JournalLine))  # one-time imports (Pandera's backends), not the close
    build_seconds, journals = best_of(3, lambda: opened(database(rows)),
                                       lambda con: build_from_db(con, tenant, "pms", dates()))
    assert journals.rejects.is_empty() and journals.lines.get_column("business_date").n_unique() == DAYS
    copy = database(rows).with_suffix(".close")

    @contextmanager
    def fresh_copy():
        shutil.copyfile(database(rows), copy)
        with opened(copy) as con:
            yield con

    try:
        seconds, closed = best_of(3, fresh_copy, lambda con: close_days(
            con, tenant, "pms", dates(), run_id="bench", now=datetime.now(UTC)))
        with opened(copy) as con:
            stored = query(con, "SELECT count(*) AS n FROM journal_line").item()
    finally:
        copy.unlink(missing_ok=True)
    assert closed.inserted == DAYS and stored == journals.lines.height
    return {"seconds": seconds, "peak_rss_mb": peak_mb(), "build_seconds": build_seconds, "journal_lines": stored}


def baseline(rows: int) -> dict:
    import polars as pl

    from warehouse.db import opened

    def group_by(con):
        sales = pl.from_arrow(con.sql(
            "SELECT business_date, category, vat_rate, sum(amount)::DECIMAL(18,2) AS amount, count(*) AS lines "
            "FROM sales_line WHERE business_date BETWEEN ? AND ? GROUP BY ALL",
            params=[FIRST_DAY, dates()[-1]]).to_arrow_table())
        payments = pl.from_arrow(con.sql(
            "SELECT business_date, kind, method, partner_id, sum(amount)::DECIMAL(18,2) AS amount, count(*) AS lines "
            "FROM payment WHERE business_date BETWEEN ? AND ? GROUP BY ALL",
            params=[FIRST_DAY, dates()[-1]]).to_arrow_table())
        return sales.height + payments.height

    seconds, _ = best_of(3, lambda: opened(database(rows)), group_by)
    return {"seconds": seconds, "peak_rss_mb": peak_mb()}


def main(argv: list[str]) -> None:
    measured = run_pair("journal", SIZES, argv, ours, baseline, prepare=generate)
    if measured:
        rows, mine, bare = measured
        report("journal", rows, mine, "bare DuckDB GROUP BY", bare, rows, build_seconds=mine["build_seconds"],
               journal_lines=mine["journal_lines"], target_rows_per_s=2_000_000, target_ratio=2.0)


if __name__ == "__main__":
    main(sys.argv[1:])
