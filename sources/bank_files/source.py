"""dlt source ``bank_files``: new statement files from a folder or an sFTP inbox into
``raw_<source>`` of the tenant's DuckDB file.

Tables (raw, as delivered; amounts as exact text, staging casts them):

* ``statement_file`` — one row per file taken (name, sha256, format, counts);
* ``statement`` — one row per statement (balances, dates) keyed by its fingerprint;
* ``bank_line`` — one row per line keyed by ``bank_line_id`` (the content fingerprint of
  ``sources.bank_files.lines``), merged, so a re-delivered file or an overlapping statement
  adds no row.

Incremental: the sha256 of every file taken is kept in the resource's dlt state, which dlt
commits together with the load; a file is skipped when its bytes were taken before, under
any name. A file that does not parse, or whose balances do not add up, is not loaded: it is
reported in ``BankFilesReport.bad`` and the caller moves it to quarantine *after* the load
succeeded, so a crash never loses a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dlt

from sources.bank_files.formats import parse_bytes
from sources.bank_files.lines import balance_error, statement_lines, unique_statement_ids
from sources.bank_files.model import Statement, StatementError


@dataclass
class BankFilesReport:
    taken: list[tuple[str, str, int]] = field(default_factory=list)  # (name, format, lines)
    skipped: list[str] = field(default_factory=list)  # taken before (same bytes)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def statement_key(statement_id: str, statement: Statement, lines: int) -> str:
    parts = (statement.account, statement.currency, statement_id, statement.opening_balance,
             statement.closing_balance, statement.statement_date, lines,
             min((e.booking_date for e in statement.entries if e.booking_date), default=None),
             max((e.booking_date for e in statement.entries if e.booking_date), default=None))
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def read_statement_file(data: bytes, name: str, fmt: str = "auto", profile=None):
    """(format, statements with their printed ids, line rows) of a good file; StatementError otherwise,
    including for a statement whose opening balance plus its lines is not its closing balance."""
    used, statements = parse_bytes(data, name, fmt, profile)
    ids = unique_statement_ids(statements)
    failed = balance_error(name, ids, statements)
    if failed is not None:
        raise failed
    return used, list(zip(ids, statements, strict=True)), statement_lines(statements, name)


def statement_rows(name: str, sha256: str, statements: list[tuple[str, Statement]], rows: list[dict]) -> list[dict]:
    by_statement: dict[str, list[dict]] = {}
    for row in rows:
        by_statement.setdefault(row["statement_id"], []).append(row)
    out = []
    for position, (statement_id, statement) in enumerate(statements):
        lines = by_statement.get(statement_id, [])
        dates = sorted(r["booking_date"] for r in lines)
        out.append({
            "statement_key": statement_key(statement_id, statement, len(lines)), "file_name": name,
            "file_position": position,
            "file_sha256": sha256, "statement_id": statement_id, "bank_account": statement.account,
            "currency": statement.currency,
            "opening_balance": None if statement.opening_balance is None or statement.derived_opening
            else f"{statement.opening_balance:f}",
            "closing_balance": None if statement.closing_balance is None else f"{statement.closing_balance:f}",
            "statement_date": statement.statement_date.isoformat() if statement.statement_date else None,
            "first_booking": dates[0] if dates else None, "last_booking": dates[-1] if dates else None,
            "lines": len(lines), "line_ids": [r["bank_line_id"] for r in lines],
        })
    return out


@dlt.source(name="bank_files", max_table_nesting=0)
def bank_files_source(store, *, fmt: str = "auto", profile=None, report: BankFilesReport | None = None):
    """Every new file of ``store`` (a ``FolderStore`` or ``SftpStore``)."""
    return statement_files(store, fmt, profile, report if report is not None else BankFilesReport())


def _hinted(rows, table: str, key: str):
    return dlt.mark.with_hints(rows, dlt.mark.make_hints(table_name=table, primary_key=key,
                                                         write_disposition="merge"), create_table_variant=True)


@dlt.resource(name="statement_files", write_disposition="merge", primary_key="file_sha256")
def statement_files(store, fmt: str, profile, report: BankFilesReport):
    state = dlt.current.resource_state()
    taken: dict[str, str] = state.setdefault("taken", {})  # sha256 -> first name
    for name in store.names():
        data = store.read(name)
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 in taken:
            report.skipped.append(name)
            continue
        try:
            used, statements, rows = read_statement_file(data, name, fmt, profile)
        except StatementError as exc:
            report.bad.append((name, str(exc)))
            continue
        taken[sha256] = name
        report.taken.append((name, used, len(rows)))
        yield _hinted([{"file_sha256": sha256, "file_name": name, "format": used, "size": len(data),
                        "statements": len(statements), "lines": len(rows),
                        "taken_at": datetime.now(UTC)}], "statement_file", "file_sha256")
        yield _hinted(statement_rows(name, sha256, statements, rows), "statement", "statement_key")
        if rows:
            yield _hinted([{**row, "file_name": name} for row in rows], "bank_line", "bank_line_id")
