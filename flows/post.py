"""``ledgerflow post``: a period's journal entries to an accounting API (INTERFACES §5), exactly once.

What to post comes from the export ledger: an entry already recorded for the destination is
skipped (so posting twice posts nothing new). Before a call, each entry gets a ``post_attempt``
row; after it, the outcome is recorded (the remote id in ``export_log``) and the attempt row
removed, in one transaction per chunk. If the run dies in between, the next run finds the
attempt and looks the entry up by its reference before posting it: found, it is recorded, not
posted again. An entry the API refuses (a 4xx validation error) is reported with the remote
message while the others go on; it stays pending for the next run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from destinations import tracking
from destinations.apis.base import AccountingApi, JournalToPost, LineToPost, Outcome
from schemas.tables import ExportLog, PostAttempt
from schemas.tenant import ApiDestination, Tenant
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, transaction

CHUNK = 50  # entries recorded per transaction: a crash re-checks at most this many by lookup


class PostProblem(ValueError):
    """Configuration or input that stops the command before anything is posted."""


@dataclass
class PostSummary:
    destination: str
    system: str
    period: tuple[date, date]
    posted: list[Outcome] = field(default_factory=list)
    found: list[Outcome] = field(default_factory=list)  # already in the system (after a crash): recorded
    skipped: int = 0  # already exported
    failed: list[Outcome] = field(default_factory=list)
    requests: int = 0
    dry_run: bool = False
    would_post: int = 0

    def line(self) -> str:
        if self.dry_run:
            return f"dry run: would post {self.would_post}, skipped {self.skipped} (already exported)"
        return (f"posted {len(self.posted) + len(self.found)}, skipped {self.skipped} (already exported), "
                f"failed {len(self.failed)}")


def resolve_destination(tenant: Tenant, system: str) -> str:
    """SYSTEM as the command names it: a destination's name, or the type of exactly one API destination."""
    apis = {name: d for name, d in tenant.destinations.items() if isinstance(d, ApiDestination)}
    if system in apis:
        return system
    typed = [name for name, d in apis.items() if d.type == system]
    if len(typed) == 1:
        return typed[0]
    if typed:
        raise PostProblem(f"tenant {tenant.id} has several {system} destinations ({', '.join(typed)}): name one")
    known = ", ".join(f"{name} ({d.type})" for name, d in apis.items()) or "none"
    raise PostProblem(f"tenant {tenant.id} has no API destination {system!r}; its API destinations: {known}")


def session_for(tenant: Tenant, destination: str):
    """(the system's module, base URL, OAuth session on the destination's token store). URLs: the
    environment (``LEDGERFLOW_<SYSTEM>_BASE_URL``, ``_TOKEN_URL``), else the destination, else production."""
    from destinations.apis import api_module
    from destinations.apis.oauth import OAuthSession, token_store

    settings: ApiDestination = tenant.destinations[destination]
    module = api_module(settings.type)
    prefix = f"LEDGERFLOW_{settings.type.upper()}"
    base_url = os.environ.get(f"{prefix}_BASE_URL") or settings.base_url or module.BASE_URL
    token_url = os.environ.get(f"{prefix}_TOKEN_URL") or settings.token_url or module.TOKEN_URL
    store = token_store(settings.token_store or f"file:tokens/{settings.type}-{settings.organisation}.json",
                        tenant.data_path())
    session = OAuthSession(settings.type, store, token_url=token_url,
                           client_id=_env(settings.client_id_env, destination),
                           client_secret=_env(settings.client_secret_env, destination),
                           timeout=settings.timeout_seconds)
    return module, base_url, session


def api_for(tenant: Tenant, destination: str, **client_options) -> AccountingApi:
    """The destination's API client: its OAuth session, the shared rate limiter."""
    from destinations.apis.http import ApiClient

    settings: ApiDestination = tenant.destinations[destination]
    module, base_url, session = session_for(tenant, destination)
    client = ApiClient(settings.type, settings.organisation, base_url, session,
                       timeout=settings.timeout_seconds, **client_options)
    return module.api(client, settings)


def _env(name: str, destination: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PostProblem(f"destination {destination}: environment variable {name} is not set")
    return value


# ---------------------------------------------------------------- what to post


def journals_from_ledger(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, start: date,
                         end: date) -> tuple[list[JournalToPost], int]:
    """Entries dated in the period not yet exported to ``destination`` (minus held-back days),
    and how many of the period's entries were exported already."""
    held = reject_store.held_back(con, tenant.sources)
    pending = tracking.pending_entries(con, tenant.id, destination, end, held)
    if pending.height:
        pending = pending.filter(pl.col("entry_date") >= start)
    exported = run(con, """
        SELECT count(*) FROM export_log x JOIN journal_entry e ON e.entry_id = x.object_id
        WHERE x.tenant = ? AND x.system_id = ? AND x.object_type = 'journal_entry' AND e.entry_date BETWEEN ? AND ?
    """, [tenant.id, destination, start, end])[0][0]
    if not pending.height:
        return [], exported
    lines = query(con, """
        SELECT l.*, e.entry_date AS e_date FROM journal_line l JOIN journal_entry e USING (entry_id)
        WHERE l.entry_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY l.entry_id, l.line_no
    """, [pending.get_column("entry_id").to_list()])
    hashes = dict(zip(pending.get_column("entry_id"), pending.get_column("content_hash"), strict=True))
    order = pending.get_column("entry_id").to_list()
    return _journals(lines, hashes, order), exported


def journals_from_csv(path: Path, start: date, end: date) -> list[JournalToPost]:
    """JOURNAL.csv (INTERFACES §3), fully checked; each entry's content hash from its lines."""
    from destinations.exports.ledger import read_journal

    lines = read_journal(path, start, end).with_row_index("line_no", offset=1)
    hashes = {entry_id: _hash(frame) for (entry_id,), frame in lines.partition_by("entry_id", as_dict=True,
                                                                                  maintain_order=True).items()}
    return _journals(lines, hashes, list(hashes))


def _hash(frame: pl.DataFrame) -> str:
    text = frame.drop("line_no").write_csv()
    return hashlib.sha256(text.encode()).hexdigest()


def _journals(lines: pl.DataFrame, hashes: dict[str, str], order: list[str]) -> list[JournalToPost]:
    by_entry: dict[str, list[dict]] = {}
    for row in lines.iter_rows(named=True):
        by_entry.setdefault(row["entry_id"], []).append(row)
    journals = []
    for entry_id in order:
        rows = by_entry[entry_id]
        first = rows[0]
        journals.append(JournalToPost(
            entry_id, first["entry_date"], first["journal_code"], first["description"], first["document_ref"],
            first["currency"], hashes[entry_id],
            tuple(LineToPost(r["account"], r["account_name"], r["description"], r["debit"], r["credit"],
                             r["vat_code"], r["partner_id"], r["partner_name"]) for r in rows)))
    return journals


# ---------------------------------------------------------------- posting


def post_journals(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, journals: list[JournalToPost],
                  *, api: AccountingApi, run_id: str, now: Callable[[], datetime],
                  summary: PostSummary) -> PostSummary:
    """Post what the ledger has not recorded yet; record each outcome as soon as its chunk returns."""
    done = {row[0] for row in run(con, """
        SELECT object_id FROM export_log WHERE tenant = ? AND system_id = ? AND object_type = 'journal_entry'
          AND object_id IN (SELECT unnest(?::VARCHAR[]))
    """, [tenant.id, destination, [j.entry_id for j in journals]])}
    summary.skipped += len(done)
    todo = [j for j in journals if j.entry_id not in done]
    interrupted = {row[0] for row in run(con, """
        SELECT object_id FROM post_attempt WHERE tenant = ? AND system_id = ?
          AND object_id IN (SELECT unnest(?::VARCHAR[]))
    """, [tenant.id, destination, [j.entry_id for j in todo]])}
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        outcomes: dict[str, Outcome] = {}
        for journal in (j for j in chunk if j.entry_id in interrupted):
            external = api.find_journal(journal)
            if external is not None:
                outcomes[journal.entry_id] = Outcome(journal.entry_id, "found", external_id=external)
        to_post = [j for j in chunk if j.entry_id not in outcomes]
        _attempting(con, tenant, destination, to_post, run_id, now())
        for outcome in api.post_journals(to_post):
            outcomes[outcome.object_id] = outcome
        _record(con, tenant, destination, chunk, outcomes, run_id, now())
        for journal in chunk:
            outcome = outcomes[journal.entry_id]
            {"posted": summary.posted, "found": summary.found, "failed": summary.failed}[outcome.status].append(
                outcome)
    return summary


def _attempting(con, tenant: Tenant, destination: str, journals: list[JournalToPost], run_id: str,
                at: datetime) -> None:
    if not journals:
        return
    with transaction(con):
        run(con, "DELETE FROM post_attempt WHERE tenant = ? AND system_id = ? "
                 "AND object_id IN (SELECT unnest(?::VARCHAR[]))", [tenant.id, destination,
                                                                   [j.entry_id for j in journals]])
        insert(con, PostAttempt, pl.DataFrame([{
            "tenant": tenant.id, "system_id": destination, "object_id": j.entry_id, "content_hash": j.content_hash,
            "run_id": run_id, "started_at": at} for j in journals]))


def _record(con, tenant: Tenant, destination: str, chunk: list[JournalToPost], outcomes: dict[str, Outcome],
            run_id: str, at: datetime) -> None:
    recorded = [j for j in chunk if outcomes[j.entry_id].status in ("posted", "found")]
    with transaction(con):
        if recorded:
            insert(con, ExportLog, pl.DataFrame([{
                "tenant": tenant.id, "system_id": destination, "object_type": "journal_entry",
                "object_id": j.entry_id, "content_hash": j.content_hash, "exported_at": at,
                "external_id": outcomes[j.entry_id].external_id,
                "note": f"{outcomes[j.entry_id].status} by run {run_id}", "batch_id": None} for j in recorded],
                schema_overrides={"batch_id": pl.String}))
            run(con, "DELETE FROM post_attempt WHERE tenant = ? AND system_id = ? "
                     "AND object_id IN (SELECT unnest(?::VARCHAR[]))", [tenant.id, destination,
                                                                       [j.entry_id for j in recorded]])


def post_period(tenant: Tenant, destination: str, start: date, end: date, *, journal_csv: Path | None = None,
                dry_run: bool = False, run_id: str, api: AccountingApi | None = None,
                now: Callable[[], datetime] | None = None, con: duckdb.DuckDBPyConnection | None = None
                ) -> PostSummary:
    """The command's work: journals of the period (from the ledger, or JOURNAL.csv), posted once.
    On an interruption (API unavailable, day's quota used up) what was recorded stays recorded; the
    summary so far is attached to the exception as ``summary``."""
    from contextlib import nullcontext

    from warehouse.db import opened

    with (nullcontext(con) if con is not None else opened(tenant.duckdb_path())) as connection:
        return _post_period(connection, tenant, destination, start, end, journal_csv, dry_run, run_id, api, now)


def _post_period(con, tenant: Tenant, destination: str, start: date, end: date, journal_csv: Path | None,
                 dry_run: bool, run_id: str, api: AccountingApi | None, now) -> PostSummary:
    from datetime import UTC

    summary = PostSummary(destination, tenant.destinations[destination].type, (start, end), dry_run=dry_run)
    if journal_csv is not None:
        journals = journals_from_csv(journal_csv, start, end)
    else:
        journals, summary.skipped = journals_from_ledger(con, tenant, destination, start, end)
    if dry_run:
        done = {row[0] for row in run(con, """
            SELECT object_id FROM export_log WHERE tenant = ? AND system_id = ?
              AND object_id IN (SELECT unnest(?::VARCHAR[]))""", [tenant.id, destination, [j.entry_id for j in journals]])}
        summary.skipped += len(done)
        summary.would_post = len(journals) - len(done)
        return summary
    api = api or api_for(tenant, destination)
    try:
        post_journals(con, tenant, destination, journals, api=api, run_id=run_id,
                      now=now or (lambda: datetime.now(UTC)), summary=summary)
    except Exception as exc:
        exc.summary = summary
        raise
    finally:
        summary.requests = getattr(getattr(api, "client", None), "calls", 0)
        api.close()
    return summary
