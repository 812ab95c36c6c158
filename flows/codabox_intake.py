"""A CodaBox-style delivery API as a bank source: CODA statements become bank lines (the same
way as statement files), SODA payroll journals become the tenant's ``soda`` journal entries.

``load_codabox`` runs the dlt source (documents are acknowledged only after they were loaded);
``stage_codabox`` then takes every CODA document not taken before (by content hash, recorded
in ``inbox_file``) and rebuilds the SODA journal of the days the payroll documents touch. A CODA
document that does not parse, or whose balances do not add up, is written to
``<data_dir>/quarantine/<source>/`` with its reason and named in the run's state and alert.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime

import polars as pl

from flows.bank_intake import BankIntake
from schemas.tables import InboxFile, polars_schema
from schemas.tenant import CodaboxSource, Tenant

log = logging.getLogger("ledgerflow.bank")


def load_codabox(tenant: Tenant, source_name: str, settings: CodaboxSource, intake: BankIntake) -> None:
    from sources.codabox import CodaboxError
    from sources.codabox import load_codabox as run_load
    from sources.extract import pipeline_for

    token = os.environ.get(settings.token_env)
    if not token:
        intake.failed.append((source_name, f"environment variable {settings.token_env} (the CodaBox token) is not set"))
        return
    try:
        loaded = run_load(pipeline_for(tenant, source_name), settings.base_url, token, vat_number=settings.vat_number,
                          software_company=os.environ.get(settings.software_company_env))
    except CodaboxError as exc:
        intake.failed.append((source_name, str(exc)))
        log.error("codabox source %s: %s", source_name, exc)
        return
    for document, reason in sorted(loaded.parse_errors.items()):
        intake.quarantined.append((f"{source_name}:{document}", reason))


def stage_codabox(con, tenant: Tenant, source_name: str, settings: CodaboxSource, intake: BankIntake, *,
                  run_id: str, now: datetime) -> None:
    from warehouse.db import table_exists

    raw = f"raw_{source_name}"
    if table_exists(con, raw, "document"):
        _stage_coda(con, tenant, source_name, raw, intake, run_id=run_id, now=now)
        _stage_invoices(con, tenant, source_name, raw, intake, run_id=run_id, now=now)
    if table_exists(con, raw, "soda_line"):
        _stage_soda(con, tenant, source_name, settings, raw, intake, run_id=run_id, now=now)


def _quarantine(tenant: Tenant, source_name: str, document_id: str, file_name: str, data: bytes,
                reason: str) -> None:
    folder = tenant.data_path() / "quarantine" / source_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{document_id}-{file_name}").write_bytes(data)
    (folder / f"{document_id}-{file_name}.reason.txt").write_text(f"{reason}\n", encoding="utf-8")


def _taken(con, digest: str, name: str, kind: str, rows: int, reason: str | None, *, run_id: str,
           now: datetime) -> None:
    from warehouse.db import insert

    insert(con, InboxFile, pl.DataFrame([{
        "sha256": digest, "name": name, "kind": kind, "rows": rows, "status": "quarantined" if reason else "loaded",
        "reason": reason, "run_id": run_id, "taken_at": now}]))


def _stage_invoices(con, tenant: Tenant, source_name: str, raw: str, intake: BankIntake, *, run_id: str,
                    now: datetime) -> None:
    """Purchase invoices (UBL) become open items (bills) the supplier payments are matched against;
    a later version of a document replaces the item, as for any open item."""
    from schemas.tables import OpenItem
    from sources.codabox.ubl import UblError, purchase_invoice_item
    from warehouse.db import insert, run

    documents = run(con, f"""
        SELECT id, file_name, content FROM {raw}.document
        WHERE type = 'invoice' AND format = 'xml' AND sha256 NOT IN (SELECT sha256 FROM inbox_file)
        ORDER BY received_at NULLS LAST, id""")
    for document_id, file_name, content in documents:
        data = bytes(content)
        digest = hashlib.sha256(data).hexdigest()
        try:
            item = purchase_invoice_item(data, file_name, f"{source_name}:{document_id}")
        except UblError as exc:
            _quarantine(tenant, source_name, document_id, file_name, data, str(exc))
            intake.quarantined.append((f"{source_name}:{file_name}", str(exc)))
            _taken(con, digest, f"{source_name}:{file_name}", "items", 0, str(exc), run_id=run_id, now=now)
            continue
        run(con, "DELETE FROM open_item WHERE item_id = ?", [item["item_id"]])
        insert(con, OpenItem, pl.DataFrame([item], schema=polars_schema(OpenItem)))
        _taken(con, digest, f"{source_name}:{file_name}", "items", 1, None, run_id=run_id, now=now)
        intake.items.append((source_name, file_name))


def _stage_coda(con, tenant: Tenant, source_name: str, raw: str, intake: BankIntake, *, run_id: str,
                now: datetime) -> None:
    from sources.bank_files.model import StatementError
    from sources.bank_files.source import read_statement_file, statement_rows
    from warehouse.bank_statements import store_statements
    from warehouse.db import run

    documents = run(con, f"""
        SELECT id, file_name, content FROM {raw}.document
        WHERE type = 'coda' AND sha256 NOT IN (SELECT sha256 FROM inbox_file)
        ORDER BY received_at NULLS LAST, id""")
    for document_id, file_name, content in documents:
        data = bytes(content)
        digest = hashlib.sha256(data).hexdigest()
        name = f"{source_name}:{file_name}"
        try:
            _, statements, rows = read_statement_file(data, file_name, "coda")
        except StatementError as exc:
            _quarantine(tenant, source_name, document_id, file_name, data, str(exc))
            intake.quarantined.append((name, str(exc)))
            _taken(con, digest, name, "bank", 0, str(exc), run_id=run_id, now=now)
            continue
        new, warnings = store_statements(con, source_name, statement_rows(file_name, digest, statements, rows), rows,
                                         run_id=run_id, now=now)
        intake.warnings += warnings
        intake.loaded.append((source_name, file_name, new))
        _taken(con, digest, name, "bank", new, None, run_id=run_id, now=now)


def _stage_soda(con, tenant: Tenant, source_name: str, settings: CodaboxSource, raw: str, intake: BankIntake, *,
                run_id: str, now: datetime) -> None:
    """Rebuild the payroll journal from every SODA document; a correction of a document (same
    reference, delivered later) replaces it. Versioning keeps unchanged days untouched."""
    from sources.codabox.soda import soda_built_lines
    from warehouse.db import query, transaction
    from warehouse.journals import plan_days, write_plan

    lines = query(con, f"""
        WITH latest AS (
            SELECT l.reference, max_by(l.document_id, coalesce(d.received_at, TIMESTAMPTZ '1970-01-01') ||
                   d.id) AS document_id
            FROM {raw}.soda_line l JOIN {raw}.document d ON d.id = l.document_id
            GROUP BY l.reference)
        SELECT l.* FROM {raw}.soda_line l JOIN latest USING (reference, document_id)
        ORDER BY l.business_date, l.reference, l.line_no""")
    if lines.is_empty():
        return
    built = soda_built_lines(lines.to_dicts(), account_map=settings.soda_accounts)
    names = tenant.account_names
    unknown = sorted(set(built["account"].to_list()) - set(names))
    for account in unknown:
        log.warning("SODA account %s is not in the chart of tenant %s: map it in soda_accounts", account, tenant.id)
    built = built.with_columns(pl.col("account").replace_strict(names, default=None).fill_null(
        pl.format("SODA account {}", pl.col("account"))).alias("account_name"))
    source = f"{source_name}_soda"
    plan = plan_days(con, tenant, source, built, sorted(set(built["business_date"].to_list())))
    with transaction(con):
        write_plan(con, plan, tenant, source, settings.soda_journal_code, run_id=run_id, now=now)
    intake.journals.append((source, plan.entries.height))
