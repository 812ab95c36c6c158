"""Export step: publish one period's export file to a destination, log it in the export ledger,
and deliver it (``destinations.deliveries``).

A destination writes one format: the journal CSV (``type = "csv"``, with a manifest beside it) or
any ledger format of ``ledgerflow export`` (``type = "files"``: FEC, DATEV, SAF-T, ...), whose file
goes into a folder of its own per batch (``<period>[_n]/``), because format rules fix the file
name (FEC's ``<SIREN>FEC<closing date>.txt`` is the same for every day of a fiscal year).
Opening balances (SAF-T, XAF, SIE) are those of the entries this destination received before.

A published batch is immutable. Exporting a period again rewrites its files
byte for byte from the logged entries (restoring a deleted file), and if entries
became pending since (a late correction, a day no longer held back), they go into
a supplementary file for the same period (``_2``...), never into the old one.
A period with nothing to export still gets its (header-only) file, so the
accountant can tell "nothing happened" from "nothing arrived".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from destinations import deliveries, tracking
from destinations.delivery.local import publish, sha256_of
from destinations.exports import journal_csv, ledger_format
from destinations.exports.ledger import JOURNAL_SCHEMA, OPENING_SCHEMA, ExportRefused, LedgerExport, generated_at
from schemas.tables import JournalLine, polars_schema
from schemas.tenant import Tenant
from schemas.validate import require_valid
from transforms.periods import Period, period_containing
from warehouse import rejects as reject_store
from warehouse.db import query, transaction


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
    deliveries: list[deliveries.DeliveryRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # refusals and failed deliveries, for the run's state
    posted: object | None = None  # flows.post.PostSummary, for an API destination


OPENING_FORMATS = {"saft-no", "xaf", "sie4", "beancount"}  # the writers that read LedgerExport.opening


def _render(tenant: Tenant, destination: str, period: Period, sequence: int,
                     lines: pl.DataFrame, opening: pl.DataFrame | None) -> tuple[str, bytes]:
    """The batch's file (relative to the destination folder) and its bytes; ExportRefused when the
    format cannot carry the lines -- before anything is written."""
    settings = tenant.destinations[destination]
    if settings.format == "csv":
        return journal_csv.file_name(settings.file_prefix, tenant.id, period.key, sequence), journal_csv.render(lines)
    export = LedgerExport(tenant.company(), period.start, period.end, _journal_frame(lines),
                          opening if opening is not None else pl.DataFrame(schema=OPENING_SCHEMA),
                          generated_at(period.end))
    if settings.format.startswith("template:"):
        from destinations.exports.templates import write_template

        files = write_template(settings.format.removeprefix("template:"), export)
    else:
        files = ledger_format(settings.format).write(export)
    (name, content), = files  # every ledger format writes one file per export
    return f"{period.key}{'' if sequence == 1 else f'_{sequence}'}/{name}", content


def _journal_frame(lines: pl.DataFrame) -> pl.DataFrame:
    """Journal lines as the export formats read them (JOURNAL.csv's columns, in entry and line order)."""
    return lines.sort("entry_date", "entry_id", "line_no", maintain_order=True).select(list(JOURNAL_SCHEMA)).cast(
        JOURNAL_SCHEMA)


def _opening(con: duckdb.DuckDBPyConnection, tenant: Tenant, system_id: str, period: Period,
             before: tuple[datetime, str] | None) -> pl.DataFrame | None:
    """Balances at the period's start of what this destination received in batches before ``before``
    (created_at, batch_id) -- all its batches when None -- so that rewriting a batch gives its bytes again.
    None for the formats that carry no opening balances."""
    if tenant.destinations[system_id].format not in OPENING_FORMATS:
        return None
    created, batch_id = before or (None, None)
    sums = query(con, """
        SELECT l.account, sum(l.debit) - sum(l.credit) AS net
        FROM export_log x JOIN export_batch b ON b.batch_id = x.batch_id
        JOIN journal_entry e ON e.entry_id = x.object_id JOIN journal_line l ON l.entry_id = x.object_id
        WHERE x.tenant = ? AND x.system_id = ? AND x.object_type = 'journal_entry' AND e.entry_date < ?
          AND (? OR b.created_at < ? OR (b.created_at = ? AND b.batch_id < ?))
        GROUP BY l.account HAVING sum(l.debit) <> sum(l.credit) ORDER BY l.account
    """, [tenant.id, system_id, period.start, before is None, created, created, batch_id])
    return sums.select("account", pl.when(pl.col("net") > 0).then(pl.col("net")).otherwise(0).alias("opening_debit"),
                       pl.when(pl.col("net") < 0).then(-pl.col("net")).otherwise(0).alias("opening_credit")
                       ).cast(OPENING_SCHEMA)


def _archived(folder: Path, batch: dict) -> bytes | None:
    """The published file's bytes when it is still there unchanged (nothing to render), else None."""
    path = folder / batch["file_name"]
    if path.is_file():
        content = path.read_bytes()
        if sha256_of(content) == batch["sha256"]:
            return content
    return None


def _unrestorable(batch: dict) -> str:
    return (f"{batch['file_name']} is missing or changed and cannot be restored byte for byte (the writer, the "
            f"company data or the fonts changed since it was published, sha256 {batch['sha256']}); the export "
            "ledger keeps its hash, and no other file was written in its place")


def _file_format(tenant: Tenant, destination: str) -> str:
    fmt = tenant.destinations[destination].format
    return journal_csv.FORMAT_ID if fmt == "csv" else f"ledgerflow.export.{fmt}"


def _publish_batch(folder: Path, tenant: Tenant, system_id: str, batch_id: str, name: str, content: bytes,
                   period: Period, lines: pl.DataFrame) -> tuple[bool, Path]:
    """Write the batch's file and its manifest; (whether the file was (re)written, the manifest's path)."""
    manifest = journal_csv.manifest(tenant=tenant.id, system_id=system_id, batch_id=batch_id,
                                    period_kind=period.kind, period_start=period.start, period_end=period.end,
                                    file=Path(name).name, content=content, lines=lines,
                                    currency=tenant.currency, file_format=_file_format(tenant, system_id))
    target = folder / name
    written = publish(target.parent, target.name, content).written
    manifest_name = target.name.removesuffix(".csv") + ".manifest.json" if name.endswith(".csv") and "/" not in name \
        else "manifest.json"
    return written, publish(target.parent, manifest_name, manifest).path


_FILE_ORDER = "e.entry_date, e.business_date, e.source, e.version, e.entry_id, l.line_no"
_LINE_COLUMNS = ", ".join(f"l.{c}" for c in JournalLine.to_schema().columns)


def _published(con: duckdb.DuckDBPyConnection, tenant: Tenant, system_id: str, periods: list[Period],
               rewrite: set[str]) -> tuple[dict[str, list[dict]], dict[str, pl.DataFrame]]:
    """Batches already published for these periods (by period key), and the lines, in file order,
    of those in the periods to ``rewrite``."""
    batches = query(con, """
        SELECT * FROM export_batch WHERE tenant = ? AND system_id = ? AND period_kind = ?
          AND period_start >= ? AND period_end <= ?
        ORDER BY created_at, batch_id
    """, [tenant.id, system_id, periods[0].kind, periods[0].start, periods[-1].end])
    wanted = {p.key for p in periods}
    by_key: dict[str, list[dict]] = {}
    for batch in batches.iter_rows(named=True):
        key = Period(batch["period_start"], batch["period_end"], batch["period_kind"]).key
        if key in wanted:
            by_key.setdefault(key, []).append(batch)
    lines = query(con, f"""
        SELECT x.batch_id, {_LINE_COLUMNS} FROM export_log x
        JOIN journal_entry e ON e.entry_id = x.object_id JOIN journal_line l ON l.entry_id = x.object_id
        WHERE x.tenant = ? AND x.system_id = ? AND x.object_type = 'journal_entry'
          AND x.batch_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY x.batch_id, {_FILE_ORDER}
    """, [tenant.id, system_id, [b["batch_id"] for key in rewrite for b in by_key.get(key, [])]])
    lines_by_batch = {key[0]: frame.drop("batch_id").cast(polars_schema(JournalLine))
                      for key, frame in lines.partition_by("batch_id", as_dict=True).items()} if lines.height else {}
    return by_key, lines_by_batch


def export_periods(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, periods: list[Period], *,
                   run_id: str, now: datetime, on_period: Callable[[int, int], None] | None = None
                   ) -> list[ExportResult]:
    """Publish ``periods`` in order to ``destination``: one transaction per period, so a crash leaves
    whole periods behind and a rerun goes on from there (rewriting the earlier ones byte for byte).

    Entries dated before the first period (a correction of a day already published, a day no
    longer held back) go into a supplementary file of their own period (``..._2.csv``), so that a
    file only ever carries entries dated inside the period its manifest names.

    Everything needed is read up front (what was published, what is pending, their lines), and the
    pending lines pass the JournalLine model once -- the last gate before data leaves.
    """
    settings = tenant.destinations[destination]
    folder = tenant.destination_path(destination)
    system_id = destination
    held = reject_store.held_back(con, tenant.sources)
    pending = tracking.pending_entries(con, tenant.id, system_id, periods[-1].end, held)
    late_periods: list[Period] = []
    for day in sorted(set(pending.get_column("entry_date").to_list())):
        period = period_containing(day, periods[0].kind)
        if period.end < periods[0].start and period not in late_periods:
            late_periods.append(period)
    published, published_lines = _published(con, tenant, system_id, late_periods + periods,
                                            rewrite={p.key for p in periods})
    order = pending.get_column("entry_id").to_list()
    lines = query(con, f"""
        SELECT {_LINE_COLUMNS} FROM journal_line l JOIN journal_entry e USING (entry_id)
        WHERE l.entry_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY {_FILE_ORDER}
    """, [order]).cast(polars_schema(JournalLine))
    if lines.height:
        require_valid(JournalLine, lines, f"journal entries to publish to {destination} up to {periods[-1].end}")
    entry_dates = pending.get_column("entry_date").to_list()
    line_ends = lines.group_by("entry_id", maintain_order=True).len().get_column("len").cum_sum().to_list()
    taken = 0  # pending entries are in file order, so each period takes the next run of them

    results = []
    for index, period in enumerate(late_periods + periods, start=1 - len(late_periods)):
        late = index < 1
        result = ExportResult(destination, period)
        results.append(result)
        earlier = published.get(period.key, [])
        try:
            for sequence, batch in enumerate([] if late else earlier, start=1):
                batch_lines = published_lines.get(batch["batch_id"], lines.clear())
                name, content = batch["file_name"], _archived(folder, batch)
                if content is None:  # deleted or damaged: rendered again from the logged entries
                    opening = _opening(con, tenant, system_id, period, (batch["created_at"], batch["batch_id"]))
                    name, content = _render(tenant, destination, period, sequence, batch_lines, opening)
                    if name != batch["file_name"] or sha256_of(content) != batch["sha256"]:
                        result.problems.append(_unrestorable(batch))
                        continue
                written, manifest_path = _publish_batch(folder, tenant, system_id, batch["batch_id"], name, content,
                                                        period, batch_lines)
                result.files.append(ExportedFile(batch["batch_id"], folder / name, manifest_path,
                                                 batch["entry_count"], batch["line_count"], batch["sha256"], False,
                                                 written))
            until = taken
            while until < len(entry_dates) and entry_dates[until] <= period.end:
                until += 1
            if until > taken or not (earlier or late):
                first_line = line_ends[taken - 1] if taken else 0
                last_line = line_ends[until - 1] if until else 0
                batch_lines = lines.slice(first_line, last_line - first_line)
                sequence = len(earlier) + 1
                batch_id = f"{system_id}:{period.key}" + ("" if sequence == 1 else f"_{sequence}")
                opening = _opening(con, tenant, system_id, period, None)
                name, content = _render(tenant, destination, period, sequence, batch_lines, opening)
                written, manifest_path = _publish_batch(folder, tenant, system_id, batch_id, name, content, period,
                                                        batch_lines)
                batch = {"tenant": tenant.id, "system_id": system_id, "batch_id": batch_id,
                         "period_kind": period.kind, "period_start": period.start, "period_end": period.end,
                         "file_name": name, "sha256": sha256_of(content), "entry_count": until - taken,
                         "line_count": batch_lines.height, "run_id": run_id}
                with transaction(con):
                    tracking.record_batch(con, batch=batch, entries=pending.slice(taken, until - taken),
                                          exported_at=now, note=f"{name} ({period}) by run {run_id}")
                result.files.append(ExportedFile(batch_id, folder / name, manifest_path, until - taken,
                                                 batch_lines.height, batch["sha256"], True, written))
                taken = until
        except ExportRefused as exc:
            # Nothing of this period was written or logged: its entries stay pending, and so do the
            # later periods', which must not overtake it. The run's state says so.
            result.problems.append(f"{destination} ({settings.format}) refused {period}: {exc}; nothing written "
                                   "for this and later periods until it is fixed")
            break
        finally:
            if late and not result.files and not result.problems:
                results.pop()
        if on_period and not late:
            on_period(index, len(periods))
    deliveries.deliver_results(con, tenant, destination, results, run_id=run_id, now=now)
    return results


def export_invoice_periods(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, periods: list[Period],
                           *, run_id: str, now: datetime) -> list[ExportResult]:
    """Publish the invoices issued up to the last period and not yet exported here (their latest version),
    one e-invoice file per
    invoice in the folder of the period of its issue date (an invoice that arrived late goes into its
    own period's folder), each its own batch in the export ledger. An invoice the format refuses is
    reported and stays pending; the others go on. Batches published before in these periods are
    rewritten byte for byte from the stored invoices (restoring a deleted file)."""
    from destinations.exports import invoice_format
    from warehouse.invoices import invoice_version, pending_invoices

    settings = tenant.destinations[destination]
    writer, company, folder = invoice_format(settings.format), tenant.company(), tenant.destination_path(destination)
    results = {period.key: ExportResult(destination, period) for period in periods}
    published = query(con, """
        SELECT b.*, x.object_id, x.content_hash FROM export_batch b JOIN export_log x USING (batch_id)
        WHERE b.tenant = ? AND b.system_id = ? AND b.period_kind = ? AND b.period_start >= ? AND b.period_end <= ?
        ORDER BY b.period_start, b.batch_id
    """, [tenant.id, destination, periods[0].kind, periods[0].start, periods[-1].end])
    for batch in published.iter_rows(named=True):
        period = Period(batch["period_start"], batch["period_end"], batch["period_kind"])
        content = _archived(folder, batch)
        if content is None:  # deleted or damaged: written again from the stored invoice
            ((name, content),) = writer.write_invoices([invoice_version(con, batch["object_id"],
                                                                        batch["content_hash"])], company)
            if f"{period.key}/{name}" != batch["file_name"] or sha256_of(content) != batch["sha256"]:
                results[period.key].problems.append(_unrestorable(batch))
                continue
        target = folder / batch["file_name"]
        written = publish(target.parent, target.name, content).written
        results[period.key].files.append(ExportedFile(batch["batch_id"], target, target, 1, batch["line_count"],
                                                      batch["sha256"], False, written))
    for digest, invoice in pending_invoices(con, destination, periods[-1].end):
        period = period_containing(invoice.issue_date, periods[0].kind)
        result = results.setdefault(period.key, ExportResult(destination, period))
        try:
            ((name, content),) = writer.write_invoices([invoice], company)
        except ExportRefused as exc:
            result.problems.append(f"{destination} ({settings.format}) refused {exc}; the invoice waits until "
                                   "it is corrected (drop a corrected INVOICES.csv into the inbox)")
            continue
        relative = f"{period.key}/{name}"
        target = folder / relative
        written = publish(target.parent, target.name, content).written
        batch = {"tenant": tenant.id, "system_id": destination, "batch_id": f"{destination}:{invoice.invoice_number}",
                 "period_kind": period.kind, "period_start": period.start, "period_end": period.end,
                 "file_name": relative, "sha256": sha256_of(content), "entry_count": 1,
                 "line_count": len(invoice.lines), "run_id": run_id}
        with transaction(con):
            tracking.record_batch(con, batch=batch, entries=pl.DataFrame(
                {"entry_id": [invoice.invoice_number], "content_hash": [digest]}), exported_at=now,
                note=f"{relative} by run {run_id}", object_type="invoice")
        result.files.append(ExportedFile(batch["batch_id"], target, target, 1, len(invoice.lines), batch["sha256"],
                                         True, written))
    ordered = sorted(results.values(), key=lambda r: r.period.start)
    deliveries.deliver_results(con, tenant, destination, ordered, run_id=run_id, now=now)
    return ordered
