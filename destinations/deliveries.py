"""Deliveries of published export files, recorded in the export ledger (``export_delivery``).

Every published batch file is kept in the destination's folder (the ``local`` channel, recorded
once) and, where configured, uploaded by sFTP and e-mailed. Each attempt is a row with the
file's content hash: a rerun sends a file again only when no attempt with that content
succeeded on that channel, or when an operator forces it (``ledgerflow deliver --force``). A
failed delivery never undoes the export: the batch stays published, the failure is recorded and
reported in the run's state, and the next run tries again.

Files are delivered from the folder, after checking their hash against the batch: what leaves is
byte for byte what the ledger says was exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from destinations.delivery.local import sha256_of
from schemas.tables import ExportDelivery
from schemas.tenant import FilesDestination, Tenant
from warehouse.db import insert, query

if TYPE_CHECKING:  # destinations.export imports this module
    from destinations.export import ExportResult

__all__ = ["DeliveryRecord", "deliver_batches", "deliver_results"]


@dataclass(frozen=True)
class DeliveryRecord:
    destination: str
    batch_id: str
    channel: str  # local | sftp | email
    target: str
    file_name: str
    sha256: str
    status: str  # ok | failed | skipped (already delivered with this content; not recorded again)
    detail: str = ""


def _targets(folder: Path, settings: FilesDestination) -> list[tuple[str, str]]:
    targets = [("local", str(folder))]
    if settings.sftp is not None:
        sftp = settings.sftp
        targets.append(("sftp", f"sftp://{sftp.username}@{sftp.host}:{sftp.port}/{sftp.remote_dir}"))
    if settings.email is not None:
        targets.append(("email", ", ".join(settings.email.to)))
    return targets


def _delivered(con: duckdb.DuckDBPyConnection, tenant: str, system_id: str) -> set[tuple[str, str, str, str]]:
    """(batch_id, channel, target, sha256) of every successful delivery to ``system_id``."""
    rows = query(con, """
        SELECT batch_id, channel, target, sha256 FROM export_delivery
        WHERE tenant = ? AND system_id = ? AND status = 'ok'
    """, [tenant, system_id])
    return set(rows.iter_rows())


def _failed_batches(con: duckdb.DuckDBPyConnection, tenant: str, system_id: str) -> list[str]:
    """Batches with a failed attempt on a channel and no success on it since: retried by the next run."""
    rows = query(con, """
        SELECT DISTINCT f.batch_id FROM export_delivery f
        WHERE f.tenant = ? AND f.system_id = ? AND f.status = 'failed'
          AND NOT EXISTS (SELECT 1 FROM export_delivery o WHERE o.tenant = f.tenant AND o.system_id = f.system_id
                          AND o.batch_id = f.batch_id AND o.channel = f.channel AND o.target = f.target
                          AND o.sha256 = f.sha256 AND o.status = 'ok')
        ORDER BY f.batch_id
    """, [tenant, system_id])
    return rows.get_column("batch_id").to_list() if rows.height else []


def _send(channel: str, settings: FilesDestination, tenant: Tenant, batch: dict, name: str,
          content: bytes) -> tuple[bool, str]:
    """One delivery over ``channel``: (ok, detail). Failures are returned, never raised."""
    if channel == "sftp":
        from destinations.delivery.sftp import DeliveryError, deliver_sftp

        try:
            (done,) = deliver_sftp(settings.sftp, [(name, content)])
        except DeliveryError as exc:
            return False, str(exc)
        return True, f"{done.remote_path} ({done.size} bytes, {done.attempts} attempt(s))"
    from destinations.delivery.email import deliver_email

    period = f"{batch['period_start']}..{batch['period_end']}"
    subject = f"{tenant.name}: {settings.format} export {period} ({Path(name).name})"
    note = (f"Export {batch['batch_id']} of {tenant.name}: {batch['entry_count']} entries, {batch['line_count']} "
            f"lines, period {period}.")
    sent = deliver_email(settings.email.settings(), [(Path(name).name, content)], subject=subject,
                         sent_at=batch["created_at"], note=note)
    return sent.ok, sent.detail


def deliver_batches(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, batch_ids: list[str], *,
                    run_id: str, now: datetime, force: bool = False,
                    channels: tuple[str, ...] = ("local", "sftp", "email")) -> list[DeliveryRecord]:
    """Deliver the files of ``batch_ids`` over every configured channel not yet holding their content
    (all of them when ``force``); record each attempt. Returns what happened, per batch and channel."""
    settings = tenant.destinations[destination]
    folder = tenant.destination_path(destination)
    if not batch_ids:
        return []
    batches = query(con, """
        SELECT * FROM export_batch WHERE tenant = ? AND system_id = ? AND batch_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY period_start, created_at, batch_id
    """, [tenant.id, destination, batch_ids])
    done = _delivered(con, tenant.id, destination)
    records: list[DeliveryRecord] = []
    attempts: list[dict] = []
    for batch in batches.iter_rows(named=True):
        name, digest = batch["file_name"], batch["sha256"]
        path = folder / name
        content = path.read_bytes() if path.is_file() else None
        for channel, target in _targets(folder, settings):
            if channel not in channels:
                continue
            record = DeliveryRecord(destination, batch["batch_id"], channel, target, name, digest, "skipped")
            if (batch["batch_id"], channel, target, digest) in done and not (force and channel != "local"):
                records.append(record)
                continue
            if content is None or sha256_of(content) != digest:
                ok, detail = False, (f"{path} is missing or differs from the exported file (sha256 {digest}); "
                                     "rerun the close of its period to restore it")
            elif channel == "local":
                ok, detail = True, str(path)
            else:
                ok, detail = _send(channel, settings, tenant, batch, name, content)
            records.append(DeliveryRecord(destination, batch["batch_id"], channel, target, name, digest,
                                          "ok" if ok else "failed", detail))
            attempts.append({"tenant": tenant.id, "system_id": destination, "batch_id": batch["batch_id"],
                             "channel": channel, "target": target, "file_name": name, "sha256": digest,
                             "bytes": len(content or b""), "status": "ok" if ok else "failed", "detail": detail,
                             "forced": force, "run_id": run_id})
            if channel != "local" and ok:
                insert(con, ExportDelivery, _rows(attempts[-1:], now))  # recorded at once: a crash cannot resend
                attempts.pop()
    insert(con, ExportDelivery, _rows(attempts, now))
    return records


def _rows(attempts: list[dict], now: datetime) -> pl.DataFrame:
    return pl.DataFrame(attempts, schema_overrides={"detail": pl.String}).with_columns(
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("attempted_at")) if attempts else pl.DataFrame()


def deliver_results(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, results: list[ExportResult],
                    *, run_id: str, now: datetime) -> None:
    """After an export run: deliver its batches, and retry batches whose delivery failed before.
    Each record goes to the result of its batch (retries of older batches to the last result);
    failures become problems of the run."""
    mine = {f.batch_id: result for result in results for f in result.files}
    retries = [b for b in _failed_batches(con, tenant.id, destination) if b not in mine]
    for record in deliver_batches(con, tenant, destination, [*mine, *retries], run_id=run_id, now=now):
        result = mine.get(record.batch_id) or (results[-1] if results else None)
        if result is None:
            continue
        result.deliveries.append(record)
        if record.status == "failed":
            where = record.detail if record.target in record.detail else f"{record.target}: {record.detail}"
            result.problems.append(f"{destination}: {record.file_name} not delivered by {record.channel}: {where} "
                                   "(retried by the next run)")
