"""``ledgerflow post``: a period's journal entries -- or, for a destination with ``post =
"documents"``, its issued invoices, credit notes and their payments -- to an accounting API
(INTERFACES §5), exactly once.

What to post comes from the export ledger: an object already recorded for the destination (by
object type: ``journal_entry``, ``invoice``, ``payment``) is skipped (so posting twice posts
nothing new). Before a call, each entry gets a ``post_attempt``
row; after it, the outcome is recorded (the remote id in ``export_log``) and the attempt row
removed, in one transaction per chunk. If the run dies in between, the next run finds the
attempt and looks the entry up by its reference before posting it: found, it is recorded, not
posted again. An entry the API refuses (a 4xx validation error) is reported with the remote
message while the others go on; it stays pending for the next run.

Documents: the latest version of every invoice and credit note issued in the period (taken from
``<inbox>/invoices`` first, as the close does), then a payment for every active reconciliation
match of a bank line to one of our invoices posted to this destination (booked in the period, or
earlier and still not posted). A payment whose invoice is not posted yet waits for a later run.
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
from destinations.apis.base import AccountingApi, DocumentToPost, JournalToPost, LineToPost, Outcome, PaymentToPost
from schemas.tables import PostAttempt
from schemas.tenant import ApiDestination, Tenant
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, transaction

CHUNK = 50  # entries recorded per transaction: a crash re-checks at most this many by lookup


class PostProblem(ValueError):
    """Configuration or input that stops the command before anything is posted."""


def posting_stopped() -> tuple[type[Exception], ...]:
    """What ends a posting run early and cleanly: recorded outcomes stay, the rest waits for the next
    run (no credentials, the API unavailable, the day's quota used up, a lookup refused)."""
    from destinations.apis.base import LookupFailed
    from destinations.apis.http import ApiUnavailable
    from destinations.apis.limiter import DailyLimitReached
    from destinations.apis.oauth import AuthError

    return AuthError, ApiUnavailable, DailyLimitReached, LookupFailed, PostProblem


@dataclass
class PostSummary:
    destination: str
    system: str
    period: tuple[date, date]
    posted: list[Outcome] = field(default_factory=list)
    found: list[Outcome] = field(default_factory=list)  # already in the system (after a crash): recorded
    skipped: int = 0  # already exported
    failed: list[Outcome] = field(default_factory=list)
    waiting: list[Outcome] = field(default_factory=list)  # payments whose invoice is not posted yet
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
    options = {"timeout": settings.timeout_seconds, "retries": settings.retries, "backoff": settings.backoff_seconds,
               **client_options}
    client = ApiClient(settings.type, settings.organisation, base_url, session, **options)
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


# ---------------------------------------------------------------- documents to post


def documents_from_ledger(con: duckdb.DuckDBPyConnection, tenant: Tenant, start: date, end: date
                          ) -> list[DocumentToPost]:
    """The latest version of every invoice and credit note issued in the period (posted or not:
    ``pending`` tells)."""
    from destinations.exports.invoices import invoice_from_document

    rows = run(con, """
        SELECT content_hash, document FROM issued_invoice WHERE issue_date BETWEEN ? AND ?
        QUALIFY row_number() OVER (PARTITION BY invoice_number ORDER BY version DESC) = 1
        ORDER BY issue_date, invoice_type, invoice_number
    """, [start, end])
    return [DocumentToPost(invoice_from_document(document), digest) for digest, document in rows]


def payments_from_ledger(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, start: date,
                         end: date) -> tuple[list[PaymentToPost], list[Outcome]]:
    """(payments, waiting): money active matches applied to our invoices, booked in the period or
    earlier and not posted yet; a payment of an invoice not posted to ``destination`` waits."""
    from warehouse.invoices import invoice_version
    from warehouse.recon import ACTIVE_SQL

    if tenant.reconciliation is None:
        return [], []
    rows = query(con, f"""
        WITH active AS ({ACTIVE_SQL}),
        invoice_posted AS (SELECT object_id, content_hash, external_id FROM export_log
                           WHERE tenant = ? AND system_id = ? AND object_type = 'invoice'),
        payment_posted AS (SELECT object_id FROM export_log
                           WHERE tenant = ? AND system_id = ? AND object_type = 'payment')
        SELECT m.match_id, m.bank_line_id, m.item_id, m.amount_applied, b.booking_date, b.bank_account,
               i.document_number, p.content_hash AS invoice_hash, p.external_id AS invoice_external_id
        FROM active m JOIN bank_line b USING (bank_line_id) JOIN open_item i USING (item_id)
        LEFT JOIN invoice_posted p ON p.object_id = i.document_number
        WHERE i.kind = 'invoice' AND m.amount_applied > 0 AND b.booking_date <= ?
          AND i.document_number IN (SELECT invoice_number FROM issued_invoice WHERE invoice_type = '380')
          AND (b.booking_date >= ? OR m.match_id NOT IN (SELECT object_id FROM payment_posted))
        ORDER BY b.booking_date, m.match_id
    """, [tenant.id, destination, tenant.id, destination, end, start])
    bank_accounts = tenant.reconciliation.bank_accounts
    payments, waiting = [], []
    for row in rows.iter_rows(named=True):
        if row["invoice_external_id"] is None:
            waiting.append(Outcome(row["match_id"], "waiting", message=f"pays invoice {row['document_number']}, "
                                                                      f"not posted to {destination} yet"))
            continue
        account = bank_accounts.get(row["bank_account"], row["bank_account"])
        content = "\x1f".join(str(row[c]) for c in ("match_id", "bank_line_id", "item_id", "amount_applied",
                                                   "booking_date", "document_number", "invoice_external_id"))
        payments.append(PaymentToPost(
            row["match_id"], hashlib.sha256(f"{content}\x1f{account}".encode()).hexdigest(),
            invoice_version(con, row["document_number"], row["invoice_hash"]), row["invoice_external_id"],
            row["booking_date"], row["amount_applied"], account))
    return payments, waiting


# ---------------------------------------------------------------- posting

def pending(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, object_type: str,
            objects: list) -> tuple[list, int]:
    """(the objects not recorded in the export ledger for ``destination``, how many are)."""
    done = {row[0] for row in run(con, """
        SELECT object_id FROM export_log WHERE tenant = ? AND system_id = ? AND object_type = ?
          AND object_id IN (SELECT unnest(?::VARCHAR[]))
    """, [tenant.id, destination, object_type, [o.object_id for o in objects]])}
    return [o for o in objects if o.object_id not in done], len(done)


def post_journals(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, journals: list[JournalToPost],
                  *, api: AccountingApi, run_id: str, now: Callable[[], datetime],
                  summary: PostSummary) -> PostSummary:
    """Post what the ledger has not recorded yet; record each outcome as soon as its chunk returns."""
    def find(journal: JournalToPost) -> Outcome | None:
        external = api.find_journal(journal)
        return None if external is None else Outcome(journal.entry_id, "found", external_id=external)

    return _post_tracked(con, tenant, destination, "journal_entry", journals, find=find, post=api.post_journals,
                         part=api.batch_size, run_id=run_id, now=now, summary=summary)


def post_documents(con: duckdb.DuckDBPyConnection, tenant: Tenant, destination: str, start: date, end: date, *,
                   api: AccountingApi, run_id: str, now: Callable[[], datetime], summary: PostSummary) -> PostSummary:
    """The period's invoices and credit notes, then the payments of posted invoices."""
    _post_tracked(con, tenant, destination, "invoice", documents_from_ledger(con, tenant, start, end),
                  find=api.find_document, post=api.post_documents, part=api.batch_size, run_id=run_id, now=now,
                  summary=summary)
    payments, summary.waiting = payments_from_ledger(con, tenant, destination, start, end)

    def find(payment: PaymentToPost) -> Outcome | None:
        external = api.find_payment(payment)
        return None if external is None else Outcome(payment.match_id, "found", external_id=external)

    return _post_tracked(con, tenant, destination, "payment", payments, find=find, post=api.post_payments,
                         part=api.batch_size, run_id=run_id, now=now, summary=summary)


def _post_tracked(con, tenant: Tenant, destination: str, object_type: str, objects: list, *,
                  find: Callable[[object], Outcome | None], post: Callable[[list], list[Outcome]], part: int,
                  run_id: str, now: Callable[[], datetime], summary: PostSummary) -> PostSummary:
    """Post ``objects`` (each with ``object_id`` and ``content_hash``) the export ledger does not hold
    as ``object_type`` yet, a chunk at a time: attempt rows, the calls, then the outcomes recorded.
    An object with an attempt row from a dead run is looked up (``find``) before it is posted."""
    todo, skipped = pending(con, tenant, destination, object_type, objects)
    summary.skipped += skipped
    part = max(1, min(CHUNK, part))
    interrupted = {row[0] for row in run(con, """
        SELECT object_id FROM post_attempt WHERE tenant = ? AND system_id = ?
          AND object_id IN (SELECT unnest(?::VARCHAR[]))
    """, [tenant.id, destination, [o.object_id for o in todo]])}
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        outcomes: dict[str, Outcome] = {}
        for item in (o for o in chunk if o.object_id in interrupted):
            found = find(item)
            if found is not None:
                outcomes[item.object_id] = found
        to_post = [_retried(o, run_id) if o.object_id in interrupted else o for o in chunk
                   if o.object_id not in outcomes]
        _attempting(con, tenant, destination, to_post, run_id, now())
        try:  # a call at a time as the API takes them: what came back is recorded even if a later call fails
            for first in range(0, len(to_post), part):
                for outcome in post(to_post[first:first + part]):
                    outcomes[outcome.object_id] = outcome
        finally:
            answered = [o for o in chunk if o.object_id in outcomes]
            _record(con, tenant, destination, answered, outcomes, run_id, now(), object_type)
            for item in answered:
                outcome = outcomes[item.object_id]
                {"posted": summary.posted, "found": summary.found, "failed": summary.failed}[outcome.status].append(
                    outcome)
    return summary


def _retried(item, run_id: str):
    """An object an earlier run tried (it failed, or the run died) and the lookup did not find: a
    fresh idempotency key for it, or the system would answer with the earlier (failed) reply."""
    from dataclasses import replace

    return replace(item, retry=run_id)


def _attempting(con, tenant: Tenant, destination: str, objects: list, run_id: str, at: datetime) -> None:
    """Attempt rows for ``objects`` (journals, documents, payments: ``object_id``, ``content_hash``)."""
    if not objects:
        return
    with transaction(con):
        run(con, "DELETE FROM post_attempt WHERE tenant = ? AND system_id = ? "
                 "AND object_id IN (SELECT unnest(?::VARCHAR[]))", [tenant.id, destination,
                                                                   [o.object_id for o in objects]])
        insert(con, PostAttempt, pl.DataFrame([{
            "tenant": tenant.id, "system_id": destination, "object_id": o.object_id, "content_hash": o.content_hash,
            "run_id": run_id, "started_at": at} for o in objects]))


def _record(con, tenant: Tenant, destination: str, chunk: list, outcomes: dict[str, Outcome], run_id: str,
            at: datetime, object_type: str) -> None:
    """The posted and found objects of ``chunk`` into the export ledger as ``object_type``; their
    attempt rows go. Failed ones keep theirs (a failure may have created something remotely)."""
    recorded = [o for o in chunk if outcomes[o.object_id].status in ("posted", "found")]
    with transaction(con):
        for status in ("posted", "found"):
            tracking.log_objects(con, tenant=tenant.id, system_id=destination, object_type=object_type,
                                 objects=pl.DataFrame([{"object_id": o.object_id, "content_hash": o.content_hash,
                                                        "external_id": outcomes[o.object_id].external_id}
                                                       for o in recorded if outcomes[o.object_id].status == status],
                                                      schema={"object_id": pl.String, "content_hash": pl.String,
                                                              "external_id": pl.String}),
                                 exported_at=at, note=f"{status} by run {run_id}")
        if recorded:
            run(con, "DELETE FROM post_attempt WHERE tenant = ? AND system_id = ? "
                     "AND object_id IN (SELECT unnest(?::VARCHAR[]))", [tenant.id, destination,
                                                                       [o.object_id for o in recorded]])


def post_period(tenant: Tenant, destination: str, start: date, end: date, *, journal_csv: Path | None = None,
                dry_run: bool = False, run_id: str, api: AccountingApi | None = None,
                now: Callable[[], datetime] | None = None, con: duckdb.DuckDBPyConnection | None = None
                ) -> PostSummary:
    """The command's work: journals of the period (from the ledger, or JOURNAL.csv) -- or, for a
    destination posting documents, its invoices, credit notes and payments -- posted once.
    On an interruption (API unavailable, day's quota used up) what was recorded stays recorded; the
    summary so far is attached to the exception as ``summary``."""
    from contextlib import nullcontext

    from warehouse.db import opened

    with (nullcontext(con) if con is not None else opened(tenant.duckdb_path())) as connection:
        return _post_period(connection, tenant, destination, start, end, journal_csv, dry_run, run_id, api, now)


def _post_period(con, tenant: Tenant, destination: str, start: date, end: date, journal_csv: Path | None,
                 dry_run: bool, run_id: str, api: AccountingApi | None, now) -> PostSummary:
    from datetime import UTC

    settings: ApiDestination = tenant.destinations[destination]
    now = now or (lambda: datetime.now(UTC))
    summary = PostSummary(destination, settings.type, (start, end), dry_run=dry_run)
    if settings.post == "documents":
        if journal_csv is not None:
            raise PostProblem(f"destination {destination} posts documents (post = \"documents\"), not journal "
                              "entries: posting JOURNAL.csv there too would book the sales twice")
        if dry_run:  # reads what is stored; files still in the inbox are taken by the real run
            return _dry_run_documents(con, tenant, destination, start, end, summary)
        from warehouse.invoices import take_invoice_inbox

        take_invoice_inbox(con, tenant, run_id=run_id, now=now())  # new INVOICES.csv files, once each

        def work(api: AccountingApi) -> PostSummary:
            return post_documents(con, tenant, destination, start, end, api=api, run_id=run_id, now=now,
                                  summary=summary)
    else:
        if journal_csv is not None:
            journals = journals_from_csv(journal_csv, start, end)
        else:
            journals, summary.skipped = journals_from_ledger(con, tenant, destination, start, end)
        if dry_run:
            todo, skipped = pending(con, tenant, destination, "journal_entry", journals)
            summary.skipped += skipped
            summary.would_post = len(todo)
            return summary

        def work(api: AccountingApi) -> PostSummary:
            return post_journals(con, tenant, destination, journals, api=api, run_id=run_id, now=now,
                                 summary=summary)
    api = api or api_for(tenant, destination)
    try:
        return work(api)
    except Exception as exc:
        exc.summary = summary
        raise
    finally:
        summary.requests = getattr(getattr(api, "client", None), "calls", 0)
        api.close()


def _dry_run_documents(con, tenant: Tenant, destination: str, start: date, end: date,
                       summary: PostSummary) -> PostSummary:
    """What documents would be posted: the period's invoices not posted yet (those stored, and those
    in files waiting in the inbox, read without taking them), and the payments whose invoice is
    posted already (those of invoices this run would post are counted as waiting)."""
    from warehouse.invoices import peek_invoice_inbox

    stored = documents_from_ledger(con, tenant, start, end)
    known = {d.object_id for d in stored}
    arriving = [DocumentToPost(invoice, "") for invoice in peek_invoice_inbox(con, tenant)
                if start <= invoice.issue_date <= end and invoice.invoice_number not in known]
    documents, skipped = pending(con, tenant, destination, "invoice", stored + arriving)
    payments, summary.waiting = payments_from_ledger(con, tenant, destination, start, end)
    payments, paid = pending(con, tenant, destination, "payment", payments)
    summary.skipped += skipped + paid
    summary.would_post = len(documents) + len(payments)
    return summary
