"""Bring a tenant's new bank statements in, before each reconcile run.

For every bank source of the tenant (``bank_files``: a folder or an sFTP inbox;
``codabox``: the delivery API) run its dlt source into ``raw_<source>``, then store the
statements and their new lines in ``bank_statement`` / ``bank_line`` and check continuity.
A bad file goes to quarantine with the reason — after the good ones were loaded, so a
crash loses nothing — and the run's final state and alert say so.

Plain functions (no Prefect): the reconcile flow calls ``take_bank_sources`` inside its task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from schemas.tables import StatementGap, polars_schema
from schemas.tenant import BankFilesSource, CodaboxSource, Tenant

log = logging.getLogger("ledgerflow.bank")


@dataclass
class BankIntake:
    loaded: list[tuple[str, str, int]] = field(default_factory=list)  # (source, file, new lines)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, file) taken before
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, why it could not be read)
    journals: list[tuple[str, int]] = field(default_factory=list)  # (source, journal entries written)
    items: list[tuple[str, str]] = field(default_factory=list)  # (source, purchase invoice) -> open items
    warnings: list[str] = field(default_factory=list)  # e.g. a statement loaded before from another file
    gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=polars_schema(StatementGap)))

    @property
    def new_lines(self) -> int:
        return sum(n for _, _, n in self.loaded)


def store_for(tenant: Tenant, settings: BankFilesSource):
    from sources.bank_files.stores import FolderStore, SftpStore

    if settings.sftp is not None:
        return SftpStore(settings.sftp, settings.pattern, settle_seconds=settings.settle_seconds)
    folder = Path(settings.folder)
    return FolderStore(folder if folder.is_absolute() else tenant.data_path() / folder, settings.pattern,
                       settle_seconds=settings.settle_seconds)


def csv_profile(tenant: Tenant, name: str | None):
    if name is None:
        return None
    from sources.bank_files.bank_csv import BUILTIN_PROFILES

    return tenant.bank_csv_profiles.get(name) or BUILTIN_PROFILES[name]


def _run_pipeline(tenant: Tenant, source_name: str, source) -> None:
    from sources.extract import pipeline_for

    pipeline = pipeline_for(tenant, source_name)
    if pipeline.has_pending_data:  # a run died after extracting: finish that package first
        log.warning("source %s: finishing a load package an earlier run left behind", source_name)
        pipeline.normalize()
        pipeline.load()
    pipeline.run(source)


def load_bank_files(tenant: Tenant, source_name: str, settings: BankFilesSource, intake: BankIntake) -> None:
    """dlt run of one folder/sFTP inbox, then quarantine of the files that were refused."""
    from sources.bank_files.source import BankFilesReport, bank_files_source

    report = BankFilesReport()
    try:
        with store_for(tenant, settings) as store:
            if not store.names():  # connects (host key, credentials) before dlt runs: errors stay ours
                return
            _run_pipeline(tenant, source_name, bank_files_source(
                store, fmt=settings.format, profile=csv_profile(tenant, settings.profile), report=report))
            for name, reason in report.bad:
                where = store.quarantine(name, reason)
                log.warning("bank file %s quarantined to %s: %s", name, where, reason)
                intake.quarantined.append((name, reason))
            for name in [n for n, _, _ in report.taken] + report.skipped:
                store.archive(name)
    except Exception as exc:  # dlt wraps what the store raises mid-extraction
        cause = _store_error(exc)
        if cause is None:
            raise
        intake.failed.append((source_name, str(cause)))
        log.error("bank source %s: %s", source_name, cause)
        return
    intake.skipped += [(source_name, name) for name in report.skipped]


def _store_error(exc: BaseException):
    from sources.bank_files.stores import StoreError

    while exc is not None:
        if isinstance(exc, StoreError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def stage_bank_files(con, source_name: str, intake: BankIntake, *, run_id: str, now: datetime) -> None:
    """raw_<source>.statement / bank_line -> bank_statement / bank_line (what is not stored yet)."""
    from warehouse.bank_statements import store_statements
    from warehouse.db import query, table_exists

    raw = f"raw_{source_name}"
    if not table_exists(con, raw, "statement"):
        return
    statements = query(con, f"""
        SELECT s.* FROM {raw}.statement s
        WHERE statement_key NOT IN (SELECT statement_key FROM bank_statement)
        ORDER BY file_name, statement_key""")
    if statements.is_empty():
        return
    ids = [i for row in statements["line_ids"].to_list() for i in _ids(row)]
    lines = query(con, f"SELECT * FROM {raw}.bank_line WHERE bank_line_id IN (SELECT unnest(?::VARCHAR[]))",
                  [ids]) if table_exists(con, raw, "bank_line") else pl.DataFrame()
    line_rows = {r["bank_line_id"]: r for r in lines.iter_rows(named=True)}
    for file_name, group in statements.group_by("file_name", maintain_order=True):
        statement_rows = [{**r, "line_ids": _ids(r["line_ids"])} for r in group.iter_rows(named=True)]
        rows = [{k: ("" if v is None else v) for k, v in line_rows[i].items()}
                for r in statement_rows for i in r["line_ids"] if i in line_rows]
        try:
            new, warnings = store_statements(con, source_name, statement_rows, rows, run_id=run_id, now=now)
        except (duckdb.Error, pl.exceptions.PolarsError, ValueError) as exc:  # one file must not stop the rest
            intake.failed.append((source_name, f"{file_name[0]}: could not be stored: {exc}"))
            log.error("bank file %s of %s could not be stored: %s", file_name[0], source_name, exc)
            continue
        intake.warnings += warnings
        intake.loaded.append((source_name, file_name[0], new))


def _ids(value) -> list[str]:
    import json

    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


def take_bank_sources(tenant: Tenant, *, run_id: str, now: datetime) -> BankIntake:
    """Every bank source of the tenant: load, quarantine, store, check continuity."""
    from warehouse.bank_statements import new_gaps
    from warehouse.db import opened

    intake = BankIntake()
    bank_sources = {n: s for n, s in sorted(tenant.sources.items()) if s.role == "bank"}
    for name, settings in bank_sources.items():
        if isinstance(settings, BankFilesSource):
            load_bank_files(tenant, name, settings, intake)
        elif isinstance(settings, CodaboxSource):
            from flows.codabox_intake import load_codabox

            load_codabox(tenant, name, settings, intake)
    if not bank_sources:
        return intake
    with opened(tenant.duckdb_path()) as con:
        for name, settings in bank_sources.items():
            if isinstance(settings, BankFilesSource):
                stage_bank_files(con, name, intake, run_id=run_id, now=now)
            elif isinstance(settings, CodaboxSource):
                from flows.codabox_intake import stage_codabox

                stage_codabox(con, tenant, name, settings, intake, run_id=run_id, now=now)
        intake.gaps = new_gaps(con, run_id=run_id)
    for gap in intake.gaps.iter_rows(named=True):
        log.warning("account %s: statement %s closes at %s but %s opens at %s", gap["bank_account"],
                    gap["previous_statement"], gap["previous_closing"], gap["next_statement"], gap["next_opening"])
    return intake
