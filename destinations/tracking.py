"""The export ledger (DESIGN.md): what left the building, where, and with which content.

``export_log`` has one row per (system, entry) exported, with the entry's content
hash; ``export_batch`` one row per published file. Together they answer: not yet
exported (``pending_entries``), exported in which file and when, and -- because an
exported entry is immutable -- which entries a late source change must reverse.
Systems that pull entries themselves use the ledger through ``destinations.entries_api``
(pending, since, mark with a timeline note).
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tables import ExportBatch, ExportLog
from warehouse.db import insert, query


def pending_entries(con: duckdb.DuckDBPyConnection, tenant: str, system_id: str, up_to: date,
                    held_back: dict[str, set[date]]) -> pl.DataFrame:
    """Entries not yet exported to ``system_id``, dated up to ``up_to``, minus held-back days, in file order."""
    entries = query(con, """
        SELECT e.entry_id, e.source, e.business_date, e.entry_date, e.version, e.kind, e.content_hash
        FROM journal_entry e
        WHERE e.tenant = ? AND e.entry_date <= ?
          AND NOT EXISTS (SELECT 1 FROM export_log x WHERE x.tenant = e.tenant AND x.system_id = ?
                          AND x.object_type = 'journal_entry' AND x.object_id = e.entry_id)
        ORDER BY e.entry_date, e.business_date, e.source, e.version, e.entry_id
    """, [tenant, up_to, system_id])
    if entries.is_empty():
        return entries
    held = pl.DataFrame([{"source": s, "business_date": d} for s, days in held_back.items() for d in days],
                        schema={"source": pl.String, "business_date": pl.Date})
    return entries.join(held, on=["source", "business_date"], how="anti", maintain_order="left")


def log_objects(con: duckdb.DuckDBPyConnection, *, tenant: str, system_id: str, object_type: str,
                objects: pl.DataFrame, exported_at: datetime, note: str | None,
                batch_id: str | None = None) -> None:
    """Record ``objects`` (``object_id``, ``content_hash``, optionally ``external_id``) as exported to
    ``system_id``: the one place export_log rows are written (files, API posts, marks by a system)."""
    if objects.is_empty():
        return
    external = pl.col("external_id") if "external_id" in objects.columns else pl.lit(None, pl.String)
    insert(con, ExportLog, objects.select(
        pl.lit(tenant).alias("tenant"), pl.lit(system_id).alias("system_id"), pl.lit(object_type).alias("object_type"),
        "object_id", "content_hash", pl.lit(exported_at).cast(pl.Datetime("us", "UTC")).alias("exported_at"),
        external.cast(pl.String).alias("external_id"), pl.lit(note, pl.String).alias("note"),
        pl.lit(batch_id, pl.String).alias("batch_id")))


def record_batch(con: duckdb.DuckDBPyConnection, *, batch: dict, entries: pl.DataFrame, exported_at: datetime,
                 note: str, object_type: str = "journal_entry") -> None:
    """Log a published batch and every object in it (``entry_id``, ``content_hash``): journal entries,
    or the one invoice of an e-invoice batch. The caller holds the transaction."""
    insert(con, ExportBatch, pl.DataFrame([batch]).with_columns(
        pl.lit(exported_at).cast(pl.Datetime("us", "UTC")).alias("created_at")))
    log_objects(con, tenant=batch["tenant"], system_id=batch["system_id"], object_type=object_type,
                objects=entries.select(pl.col("entry_id").alias("object_id"), "content_hash",
                                       pl.lit(batch["file_name"]).alias("external_id")),
                exported_at=exported_at, note=note, batch_id=batch["batch_id"])
