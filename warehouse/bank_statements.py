"""Statements and their lines in the tenant's DuckDB file, exactly once.

``store_statements`` inserts the lines not stored before (by ``bank_line_id``, the content
fingerprint) and one ``bank_statement`` row per statement not stored before (by its
fingerprint). ``new_gaps`` then checks continuity per account: consecutive statements must
join up (closing of one = opening of the next); a gap is stored once, when first seen, so it
is alerted once.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

import duckdb
import polars as pl

from schemas.money import MONEY_DTYPE
from schemas.tables import BankLine, BankStatement, StatementGap, polars_schema
from warehouse.db import insert, query, run, transaction


def _lines_frame(rows: list[dict]) -> pl.DataFrame:
    schema = polars_schema(BankLine)
    text = pl.DataFrame(rows, schema={c: pl.String for c in schema}, strict=False) if rows else pl.DataFrame(
        schema={c: pl.String for c in schema})
    blank = {c: pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)) for c in schema}
    return text.select(*(v.alias(k) for k, v in blank.items())).with_columns(
        pl.col("booking_date", "value_date").str.to_date("%Y-%m-%d"),
        pl.col("amount").cast(MONEY_DTYPE),  # exact: the parser refused more than two decimals
        pl.col("sequence").cast(pl.Int64),
    ).cast(schema)


def _decimal(text: str | None) -> Decimal | None:
    return None if text in (None, "") else Decimal(text)


def _date(text: str | date | None) -> date | None:
    return None if text in (None, "") else text if isinstance(text, date) else date.fromisoformat(text)


def _same_statement(con, s: dict) -> str | None:
    """The file an equal statement came from under another identity: same account, currency, balances,
    dates and number of lines -- the same statement in another format (MT940 and camt.053 of one day),
    whose lines fingerprint differently. None when there is none (or the statement has no balances)."""
    if s["opening_balance"] in (None, "") or s["closing_balance"] in (None, ""):
        return None
    found = run(con, """
        SELECT file_name FROM bank_statement
        WHERE bank_account = ? AND currency = ? AND opening_balance = ?::DECIMAL(18,2)
          AND closing_balance = ?::DECIMAL(18,2) AND lines = ? AND first_booking IS NOT DISTINCT FROM ?::DATE
          AND last_booking IS NOT DISTINCT FROM ?::DATE AND statement_key <> ? AND lines > 0
        LIMIT 1""", [s["bank_account"], s["currency"], s["opening_balance"], s["closing_balance"], s["lines"],
                     s["first_booking"], s["last_booking"], s["statement_key"]])
    return found[0][0] if found else None


def store_statements(con: duckdb.DuckDBPyConnection, source: str, statements: list[dict], lines: list[dict], *,
                     run_id: str, now: datetime) -> tuple[int, list[str]]:
    """Insert what is new: (number of new lines, warnings). ``statements`` are the raw statement rows
    of ``sources.bank_files.source.statement_rows``; ``lines`` the LINES.csv rows."""
    stored_lines = {r[0] for r in run(con, "SELECT bank_line_id FROM bank_line WHERE bank_line_id IN "
                                           "(SELECT unnest(?::VARCHAR[]))", [[r["bank_line_id"] for r in lines]])}
    stored_statements = {r[0] for r in run(con, "SELECT statement_key FROM bank_statement WHERE statement_key IN "
                                                "(SELECT unnest(?::VARCHAR[]))",
                                           [[s["statement_key"] for s in statements]])}
    warnings, skipped = [], set()
    for s in statements:
        if s["statement_key"] not in stored_statements and (other := _same_statement(con, s)):
            skipped.update(s["line_ids"])
            warnings.append(f"{s['file_name']}: statement {s['statement_id']} of {s['bank_account']} equals one "
                            f"already loaded from {other} (same balances, dates and lines): its lines were not "
                            "loaded again")
    fresh, seen = [], set(stored_lines) | skipped
    for row in lines:
        if row["bank_line_id"] not in seen:
            seen.add(row["bank_line_id"])
            fresh.append(row)
    fresh_ids = {r["bank_line_id"] for r in fresh}
    new_statements, keys = [], set(stored_statements)
    for s in statements:
        if s["statement_key"] in keys:
            continue
        keys.add(s["statement_key"])
        new_statements.append({
            "statement_key": s["statement_key"], "source": source, "file_name": s["file_name"],
            "file_position": s["file_position"], "statement_id": s["statement_id"],
            "bank_account": s["bank_account"], "currency": s["currency"],
            "opening_balance": _decimal(s["opening_balance"]), "closing_balance": _decimal(s["closing_balance"]),
            "first_booking": _date(s["first_booking"]), "last_booking": _date(s["last_booking"]),
            "statement_date": _date(s["statement_date"]), "lines": s["lines"],
            "new_lines": sum(1 for i in s["line_ids"] if i in fresh_ids), "run_id": run_id, "taken_at": now})
    statement_frame = pl.DataFrame(new_statements, schema=polars_schema(BankStatement))
    with transaction(con):
        insert(con, BankLine, _lines_frame(fresh))
        insert(con, BankStatement, statement_frame)
    return len(fresh), warnings


GAP_SQL = """
    WITH ordered AS (
        SELECT *, lag(statement_key) OVER w AS prev_key, lag(statement_id) OVER w AS prev_id,
               lag(closing_balance) OVER w AS prev_closing, lag(last_booking) OVER w AS prev_last
        FROM bank_statement
        WHERE opening_balance IS NOT NULL AND closing_balance IS NOT NULL
        WINDOW w AS (PARTITION BY bank_account, currency
                     ORDER BY coalesce(statement_date, last_booking, first_booking), first_booking NULLS FIRST,
                              taken_at, file_name, file_position)
    )
    SELECT prev_key, statement_key, bank_account, currency, prev_id, prev_closing, statement_id, opening_balance
    FROM ordered
    WHERE prev_key IS NOT NULL AND prev_closing <> opening_balance
      -- Overlapping statements (days 1-5, then 3-7) cannot join up; their shared lines were deduplicated
      -- instead. A statement overlaps when some of its lines were known before, or its days reach back.
      AND NOT (prev_last IS NOT NULL AND first_booking IS NOT NULL AND prev_last > first_booking)
      AND NOT (new_lines < lines)
    ORDER BY bank_account, currency, statement_id
"""


def new_gaps(con: duckdb.DuckDBPyConnection, *, run_id: str) -> pl.DataFrame:
    """Gaps not seen by an earlier run (stored now); the StatementGap columns."""
    found = query(con, GAP_SQL)
    rows = [{
        "gap_id": hashlib.sha256(f"{prev_key}\x1f{key}".encode()).hexdigest()[:20], "bank_account": account,
        "currency": currency, "previous_statement": prev_id, "previous_closing": prev_closing,
        "next_statement": statement_id, "next_opening": opening, "difference": opening - prev_closing,
        "first_seen_run": run_id,
    } for prev_key, key, account, currency, prev_id, prev_closing, statement_id, opening in found.iter_rows()]
    frame = pl.DataFrame(rows, schema=polars_schema(StatementGap))
    known = {r[0] for r in run(con, "SELECT gap_id FROM statement_gap")}
    frame = frame.filter(~pl.col("gap_id").is_in(list(known)))
    insert(con, StatementGap, frame)
    return frame
