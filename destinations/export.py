"""Export step: publish one period's journal file to a destination and log it in the export ledger.

A published batch is immutable. Exporting a period again rewrites its files
byte for byte from the logged entries (restoring a deleted file), and if entries
became pending since (a late correction, a day no longer held back), they go into
a supplementary file for the same period (``_2``...), never into the old one.
A period with nothing to export still gets its (header-only) file, so the
accountant can tell "nothing happened" from "nothing arrived".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from destinations import tracking
from destinations.delivery.local import publish, sha256_of
from destinations.exports import journal_csv
from schemas.tables import JournalLine
from schemas.tenant import Tenant
from schemas.validate import require_valid
from transforms.periods import Period
from warehouse import rejects as reject_store
from warehouse.db import read_model, run, transaction


@dataclass(frozen=True)
class ExportedFile:
    batch_id: str
    path: Path
    manifest: Path
    entries: int
    lines: int
    sha256: str
    new_batch: bool  # False: an earlier run's batch, rewritten identically
    written: bool  # False: the identical file was already there


@dataclass(frozen=True)
class ExportResult:
    destination: str
    period: Period
    files: list[ExportedFile] = field(default_factory=list)
    held_back: list[tuple[str, date]] = field(default_factory=list)


def _lines_of(con: duckdb.DuckDBPyConnection, entry_ids: list[str], order: list[str]) -> pl.DataFrame:
    lines = read_model(con, JournalLine, "entry_id IN (SELECT unnest(?::VARCHAR[]))", [entry_ids])
    rank = pl.DataFrame({"entry_id": order, "__rank": list(range(len(order)))},
                        schema={"entry_id": pl.String, "__rank": pl.Int64})
    return lines.join(rank, on="entry_id").sort("__rank", "line_no").drop("__rank")


def _publish_batch(folder: Path, tenant: Tenant, system_id: str, batch_id: str, name: str, period: Period,
                   lines: pl.DataFrame) -> tuple[bytes, bool, Path]:
    content = journal_csv.render(lines)
    manifest = journal_csv.manifest(tenant=tenant.id, system_id=system_id, batch_id=batch_id,
                                    period_kind=period.kind, period_start=period.start, period_end=period.end,
                                    file=name, content=content, lines=lines, currency=tenant.currency)
    written = publish(folder, name, content).written
    manifest_path = publish(folder, name.removesuffix(".csv") + ".manifest.json", manifest).path
    return content, written, manifest_path


def export_period(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, period: Period, *,
                  run_id: str, now: datetime, held: dict[str, set[date]] | None = None,
                  validated: bool = False) -> ExportResult:
    """Publish ``period`` to ``destination``.

    When many periods are exported in a row the caller passes ``held`` (source -> held-back days)
    and, having run ``validate_pending`` once for all of them, ``validated=True``.
    """
    settings = tenant.destinations[destination]
    folder = tenant.destination_path(destination)
    system_id = destination
    base = f"{system_id}:{period.key}"
    result = ExportResult(destination, period)

    earlier = tracking.batches_for(con, tenant.id, system_id, base)
    for batch in earlier.iter_rows(named=True):
        ids = tracking.entries_in_batch(con, batch["batch_id"])
        lines = _lines_of(con, ids, _file_order(con, ids))
        content, written, manifest_path = _publish_batch(folder, tenant, system_id, batch["batch_id"],
                                                         batch["file_name"], period, lines)
        if sha256_of(content) != batch["sha256"]:
            raise RuntimeError(f"{batch['file_name']}: regenerated content differs from the exported file "
                               f"(sha256 {batch['sha256']}); exported entries must never change")
        result.files.append(ExportedFile(batch["batch_id"], folder / batch["file_name"], manifest_path,
                                         batch["entry_count"], batch["line_count"], batch["sha256"], False, written))

    if held is None:
        held = held_back(con, tenant)
    pending = tracking.pending_entries(con, tenant.id, system_id, period.end, held)
    result.held_back.extend(sorted((s, d) for s, days in held.items() for d in days if d <= period.end))
    if earlier.height and pending.is_empty():
        return result

    sequence = earlier.height + 1
    batch_id = base if sequence == 1 else f"{base}_{sequence}"
    name = journal_csv.file_name(settings.file_prefix, tenant.id, period.key, sequence)
    order = pending.get_column("entry_id").to_list()
    lines = _lines_of(con, order, order)
    if lines.height and not validated:
        require_valid(JournalLine, lines, f"export {name}")  # the last gate before data leaves
    content, written, manifest_path = _publish_batch(folder, tenant, system_id, batch_id, name, period, lines)
    batch = {"tenant": tenant.id, "system_id": system_id, "batch_id": batch_id, "period_kind": period.kind,
             "period_start": period.start, "period_end": period.end, "file_name": name,
             "sha256": sha256_of(content), "entry_count": len(order), "line_count": lines.height, "run_id": run_id}
    with transaction(con):
        tracking.record_batch(con, batch=batch, entries=pending, exported_at=now,
                              note=f"{name} ({period}) by run {run_id}")
    result.files.append(ExportedFile(batch_id, folder / name, manifest_path, len(order), lines.height,
                                     batch["sha256"], True, written))
    return result


def validate_pending(con: duckdb.DuckDBPyConnection, tenant: Tenant, destinations: list[str], up_to: date,
                     held: dict[str, set[date]]) -> int:
    """The last gate before data leaves, for everything about to be published up to ``up_to``: every
    line must pass the JournalLine model (one balanced entry, one side per line, known currency)."""
    ids: set[str] = set()
    for destination in destinations:
        ids |= set(tracking.pending_entries(con, tenant.id, destination, up_to, held).get_column("entry_id").to_list())
    lines = read_model(con, JournalLine, "entry_id IN (SELECT unnest(?::VARCHAR[]))", [sorted(ids)])
    if lines.height:
        require_valid(JournalLine, lines, f"journal entries to publish up to {up_to}")
    return lines.height


def held_back(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> dict[str, set[date]]:
    return {source: reject_store.held_back_dates(con, source) for source in tenant.sources}


def _file_order(con: duckdb.DuckDBPyConnection, entry_ids: list[str]) -> list[str]:
    rows = run(con, """
        SELECT entry_id FROM journal_entry WHERE entry_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY entry_date, business_date, source, version, entry_id
    """, [entry_ids])
    return [row[0] for row in rows]
