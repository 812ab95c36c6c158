"""What we told a training system, and where it disagreed (rules: ``sources.training.push``).

Tables (created here, in the tenant's DuckDB file):

* ``training_payment_push``: one row per active bank match of a training invoice, written
  *before* the payment is posted (``sending``), then ``sent`` (with the system's payment id),
  ``already_paid`` (noted, nothing posted), ``void`` or ``refused`` (conflicts). A ``sending``
  row left by a run that died is posted again with the same idempotency key.
* ``training_update``: PO number / due date changes the finance team asked for (``pending``,
  then ``applied``, ``already``, ``conflict``, ``void`` or ``refused``).
* ``training_update_file``: update CSVs taken from ``<inbox>/training_updates`` (same bytes are
  taken once; a file without the needed header is moved to ``<inbox>/quarantine``).
* ``training_conflict``: each disagreement once, with both values: what alerts are made of.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.tenant import Tenant
from sources.training import TrainingAuthError, token_of
from sources.training.push import (
    UPDATABLE,
    TrainingApiError,
    TrainingClient,
    after_precondition_failed,
    payment_refusal,
)
from warehouse import rejects as reject_store
from warehouse.db import insert, query, run, transaction
from warehouse.recon import ACTIVE_SQL, move_to_quarantine
from warehouse.stage_training import current_versions

UPDATES_FOLDER = "training_updates"
UPDATE_COLUMNS = ("invoice_number", "po_number", "due_date")
MAX_PO_LENGTH = 64

TABLES_SQL = (
    """CREATE TABLE IF NOT EXISTS training_payment_push (
        push_key VARCHAR NOT NULL, source VARCHAR NOT NULL, match_id VARCHAR NOT NULL,
        bank_line_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, invoice_id VARCHAR NOT NULL,
        invoice_number VARCHAR, amount DECIMAL(18,2) NOT NULL, currency VARCHAR NOT NULL, paid_on DATE,
        status VARCHAR NOT NULL, remote_id VARCHAR, detail VARCHAR, run_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS training_update (
        update_id VARCHAR NOT NULL, source VARCHAR NOT NULL, origin VARCHAR NOT NULL, row_no INTEGER,
        invoice_id VARCHAR NOT NULL, invoice_number VARCHAR NOT NULL, po_number VARCHAR, due_date DATE,
        status VARCHAR NOT NULL, new_version BIGINT, detail VARCHAR, run_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS training_update_file (
        sha256 VARCHAR NOT NULL, source VARCHAR NOT NULL, name VARCHAR NOT NULL, rows INTEGER NOT NULL,
        rejected INTEGER NOT NULL, status VARCHAR NOT NULL, reason VARCHAR, run_id VARCHAR NOT NULL,
        taken_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS training_conflict (
        conflict_id VARCHAR NOT NULL, source VARCHAR NOT NULL, invoice_id VARCHAR NOT NULL,
        invoice_number VARCHAR, kind VARCHAR NOT NULL, field VARCHAR, ours VARCHAR, theirs VARCHAR,
        detail VARCHAR NOT NULL, run_id VARCHAR NOT NULL, found_at TIMESTAMPTZ NOT NULL)""",
)


class UpdateFileError(ValueError):
    """An update CSV that cannot be read at all (no header, a required column missing)."""


@dataclass
class PushResult:
    source: str
    payments_pushed: int = 0
    noted: list[str] = field(default_factory=list)  # nothing to do, said once (e.g. already paid)
    updates_applied: int = 0
    conflicts: list[str] = field(default_factory=list)  # new this run: for the alert
    failed: list[str] = field(default_factory=list)  # left pending for the next run
    rejects: list[str] = field(default_factory=list)  # update rows refused
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for sql in TABLES_SQL:
        run(con, sql)


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def push_training(con: duckdb.DuckDBPyConnection, tenant: Tenant, source_name: str, *, run_id: str, now: datetime,
                  session=None, sleep=None) -> PushResult:
    """After matching: post the payments our bank matches settled, take the finance team's update
    files and send the pending updates. A failure is reported and left pending, never raised."""
    settings = tenant.sources[source_name]
    ensure_tables(con)
    result = PushResult(source_name)
    take_update_files(con, tenant, source_name, result, run_id=run_id, now=now)
    try:
        url = settings.resolved_base_url()
        if url is None:
            raise ValueError(f"source {source_name}: set base_url (or LEDGERFLOW_TRAINING_BASE_URL)")
        extra = {"sleep": sleep} if sleep is not None else {}
        client = TrainingClient(url, token_of(settings), token_env=settings.token_env, session=session,
                                retries=settings.retries, timeout=settings.timeout_seconds, **extra)
        if settings.push_payments:
            push_payments(con, tenant, source_name, client, result, method=settings.payment_method, run_id=run_id,
                          now=now)
        send_updates(con, source_name, client, result, run_id=run_id, now=now)
    except (TrainingAuthError, ValueError) as exc:
        result.failed.append(str(exc))
    return result


# --------------------------------------------------------------------------- conflicts

def _conflict(con, result: PushResult, *, key: tuple, invoice_id: str, number: str | None, kind: str, detail: str,
              run_id: str, now: datetime, field_name: str | None = None, ours: str | None = None,
              theirs: str | None = None) -> None:
    """Record a disagreement once; the alert hears of it the first time only."""
    conflict_id = _sha(result.source, kind, *key)
    if run(con, "SELECT 1 FROM training_conflict WHERE conflict_id = ?", [conflict_id]):
        return
    run(con, "INSERT INTO training_conflict VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [conflict_id, result.source, invoice_id, number, kind, field_name, ours, theirs, detail, run_id, now])
    result.conflicts.append(detail)


# --------------------------------------------------------------------------- payments

def _payment_body(row: dict, method: str) -> dict:
    # A bank gives a booking date, the system wants an instant: noon UTC is that date in every time
    # zone from UTC-11 to UTC+11, so the system shows the date the bank booked.
    paid_at = f"{row['paid_on'].isoformat()}T12:00:00Z" if row["paid_on"] else None
    return {"amount": f"{row['amount']:.2f}", "currency": row["currency"], "method": method, "paid_at": paid_at,
            "reference": row["bank_line_id"]}


def _set_push(con, push_key: str, status: str, *, now: datetime, remote_id: str | None = None,
              detail: str | None = None) -> None:
    run(con, "UPDATE training_payment_push SET status = ?, remote_id = coalesce(?, remote_id), detail = ?, "
             "updated_at = ? WHERE push_key = ?", [status, remote_id, detail, now, push_key])


def push_payments(con, tenant: Tenant, source: str, client: TrainingClient, result: PushResult, *, method: str,
                  run_id: str, now: datetime) -> None:
    """Settle what a dead run left ``sending``, then push every new active match of a training invoice."""
    prefix = f"{source}:"
    for row in query(con, "SELECT * FROM training_payment_push WHERE source = ? AND status = 'sending' "
                          "ORDER BY created_at, push_key", [source]).to_dicts():
        _resume(con, client, result, row, method, run_id=run_id, now=now)
    fresh = query(con, f"""
        SELECT m.match_id, m.bank_line_id, m.item_id, m.amount_applied AS amount, i.currency,
               i.document_number AS invoice_number, b.booking_date AS paid_on
        FROM ({ACTIVE_SQL}) m JOIN open_item i USING (item_id) JOIN bank_line b USING (bank_line_id)
        WHERE i.kind = 'invoice' AND starts_with(m.item_id, ?) AND m.amount_applied > 0
          AND m.match_id NOT IN (SELECT match_id FROM training_payment_push WHERE source = ?)
        ORDER BY b.booking_date, m.match_id
    """, [prefix, source]).to_dicts()
    for row in fresh:
        row.update(invoice_id=row["item_id"][len(prefix):], push_key="lf-" + _sha(tenant.id, source, row["match_id"]))
        try:
            answer = client.invoice(row["invoice_id"])
        except TrainingApiError as exc:
            result.failed.append(f"{row['invoice_number']}: {exc}")
            continue
        refusal = payment_refusal(answer.body) if answer.status == 200 else "missing"
        status = {"void": "void", "paid": "already_paid", "missing": "refused"}.get(refusal or "", "sending")
        run(con, "INSERT INTO training_payment_push VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)",
            [row["push_key"], source, row["match_id"], row["bank_line_id"], row["item_id"], row["invoice_id"],
             row["invoice_number"], row["amount"], row["currency"], row["paid_on"], status, run_id, now, now])
        if refusal == "paid":
            result.noted.append(f"invoice {row['invoice_number']}: the system shows it paid already; the bank "
                                f"payment {row['bank_line_id']} ({row['amount']}) was not pushed")
        elif refusal is not None:
            _conflict(con, result, key=(row["push_key"],), invoice_id=row["invoice_id"], number=row["invoice_number"],
                      kind="payment_refused", run_id=run_id, now=now,
                      detail=f"invoice {row['invoice_number']} is {'void' if refusal == 'void' else 'unknown'} in the "
                             f"training system, but bank line {row['bank_line_id']} paid {row['amount']} "
                             f"{row['currency']} on it: nothing pushed; look at it")
        else:
            _post(con, client, result, row, method, run_id=run_id, now=now)
    _reversed_after_push(con, result, source, run_id=run_id, now=now)


def _resume(con, client: TrainingClient, result: PushResult, row: dict, method: str, *, run_id: str,
            now: datetime) -> None:
    """A payment a dead run was sending: found in the system (posted before the crash) -> recorded;
    its match reversed since -> not sent; otherwise posted again. The look-up comes first because
    a system forgets idempotency keys after a while (Stripe: 24 hours), a bank reference it keeps."""
    active = run(con, f"SELECT count(*) FROM ({ACTIVE_SQL}) WHERE match_id = ?", [row["match_id"]])[0][0]
    try:
        answer = client.payments_of(row["invoice_id"])
    except TrainingApiError as exc:
        result.failed.append(f"payment of {row['invoice_number']} ({row['amount']}): {exc}; retried next run")
        return
    found = [p for p in answer.body.get("data", []) if answer.status == 200 and p.get("source") == "ledgerflow"
             and p.get("reference") == row["bank_line_id"] and str(p.get("amount")) == f"{row['amount']:.2f}"]
    if found:
        _set_push(con, row["push_key"], "sent", now=now, remote_id=str(found[0].get("id")),
                  detail="found in the system after a run died before recording it")
        return
    if not active:
        _set_push(con, row["push_key"], "cancelled", now=now, detail="the match was reversed before it was sent")
        return
    _post(con, client, result, row, method, run_id=run_id, now=now)


def _post(con, client: TrainingClient, result: PushResult, row: dict, method: str, *, run_id: str,
          now: datetime) -> None:
    """Post one recorded payment; its key makes a second post of the same row harmless."""
    try:
        answer = client.record_payment(row["invoice_id"], row["push_key"], _payment_body(row, method))
    except TrainingApiError as exc:
        result.failed.append(f"payment of {row['invoice_number']} ({row['amount']}): {exc}; retried next run")
        return
    if answer.status in (200, 201):
        _set_push(con, row["push_key"], "sent", now=now, remote_id=str(answer.body.get("id")))
        result.payments_pushed += 1
        return
    status = "void" if answer.status == 409 else "refused"
    _set_push(con, row["push_key"], status, now=now, detail=f"HTTP {answer.status}: {answer.body.get('error')}")
    _conflict(con, result, key=(row["push_key"],), invoice_id=row["invoice_id"], number=row["invoice_number"],
              kind="payment_refused", run_id=run_id, now=now,
              detail=f"invoice {row['invoice_number']}: the system refused the payment of bank line "
                     f"{row['bank_line_id']} ({row['amount']} {row['currency']}): HTTP {answer.status} "
                     f"{answer.body.get('error')}")


def _reversed_after_push(con, result: PushResult, source: str, *, run_id: str, now: datetime) -> None:
    undone = query(con, f"""
        SELECT * FROM training_payment_push WHERE source = ? AND status = 'sent'
          AND match_id NOT IN (SELECT match_id FROM ({ACTIVE_SQL}))
        ORDER BY push_key
    """, [source]).to_dicts()
    for row in undone:
        _conflict(con, result, key=(row["push_key"],), invoice_id=row["invoice_id"], number=row["invoice_number"],
                  kind="reversed_after_push", run_id=run_id, now=now,
                  detail=f"invoice {row['invoice_number']}: the bank match of {row['bank_line_id']} was reversed "
                         f"after its payment ({row['remote_id']}, {row['amount']}) was pushed; remove that payment "
                         "in the training system")


# --------------------------------------------------------------------------- invoice updates

def read_update_csv(name: str, text: str) -> tuple[list[dict], list[tuple[int, str, str | None, str]]]:
    """(good rows, problems as (row, column, value, reason)); rows count from 2 (1 is the header)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if "invoice_number" not in header or not {"po_number", "due_date"} & set(header):
        raise UpdateFileError(f"{name}: row 1: the header must name invoice_number and po_number and/or due_date "
                              f"(found: {', '.join(header) or 'nothing'})")
    rows, problems = [], []
    for number, raw in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        found = []
        if not values.get("invoice_number"):
            found.append((number, "invoice_number", None, "is empty"))
        due: date | None = None
        if values.get("due_date"):
            try:
                due = date.fromisoformat(values["due_date"])
            except ValueError:
                found.append((number, "due_date", values["due_date"], "is not a date YYYY-MM-DD"))
        po = values.get("po_number") or None
        if po is not None and len(po) > MAX_PO_LENGTH:
            found.append((number, "po_number", po, f"is longer than {MAX_PO_LENGTH} characters"))
        if not found and po is None and due is None:
            found.append((number, "po_number", None, "po_number and due_date are both empty: nothing to change"))
        problems += found
        if not found:
            rows.append({"row_no": number, "invoice_number": values["invoice_number"], "po_number": po, "due_date": due})
    return rows, problems


def _reject_rows(con, result: PushResult, source: str, origin: str, problems: list, *, run_id: str,
                 now: datetime) -> None:
    if not problems:
        return
    messages = [reason if column is None else f"{origin}: row {row}: column {column}: value {value!r}: {reason}"
                for row, column, value, reason in problems]
    result.rejects += messages
    rows = reject_store.with_ids(pl.DataFrame([{
        "source": source, "table_name": "training_update", "record_id": f"{origin}:{row}", "record_version": None,
        "business_date": None, "column_name": column, "value": value, "reason": message, "payload": None}
        for (row, column, value, _), message in zip(problems, messages, strict=True)],
        schema_overrides={"business_date": pl.Date, "value": pl.String, "record_version": pl.String,
                          "payload": pl.String}), stage="reconcile", run_id=run_id, now=now)
    known = query(con, "SELECT problem_id FROM rejects")
    insert(con, reject_store.Reject, rows.join(known, on="problem_id", how="anti"))


def queue_updates(con, source: str, origin: str, rows: list[dict], result: PushResult, *, run_id: str,
                  now: datetime) -> int:
    """Queue updates (``invoice_number``, ``po_number``, ``due_date``, optional ``row_no``) for the next
    send; what the CLI calls too. An invoice number we never pulled from this source is refused."""
    ensure_tables(con)
    numbers = sorted({row["invoice_number"] for row in rows})
    known = dict(run(con, f"SELECT DISTINCT number, id FROM raw_{source}.invoices WHERE number IN "
                          "(SELECT unnest(?::VARCHAR[]))", [numbers])) if numbers and _has_raw(con, source) else {}
    problems, queued = [], 0
    for position, row in enumerate(rows, start=1):
        row_no = row.get("row_no", position)
        if row["invoice_number"] not in known:
            problems.append((row_no, "invoice_number", row["invoice_number"],
                             f"is not an invoice of source {source} (not pulled yet, or mistyped)"))
            continue
        run(con, "INSERT INTO training_update VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, ?, ?, ?)",
            [_sha(source, origin, row_no, row["invoice_number"]), source, origin, row_no, known[row["invoice_number"]],
             row["invoice_number"], row.get("po_number"), row.get("due_date"), run_id, now, now])
        queued += 1
    _reject_rows(con, result, source, origin, problems, run_id=run_id, now=now)
    return queued


def _has_raw(con, source: str) -> bool:
    return bool(run(con, "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'invoices'",
                    [f"raw_{source}"]))


def take_update_files(con, tenant: Tenant, source: str, result: PushResult, *, run_id: str, now: datetime) -> None:
    """Every new CSV of ``<inbox>/training_updates``: good rows queued, bad rows rejected (file, row,
    column, value), a file that cannot be read moved to ``<inbox>/quarantine`` with its reason."""
    inbox = tenant.inbox_path()
    folder = inbox / UPDATES_FOLDER
    if not folder.is_dir():
        return
    taken = {row[0] for row in run(con, "SELECT sha256 FROM training_update_file WHERE source = ?", [source])}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv"):
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if digest in taken:
            continue
        try:
            rows, problems = read_update_csv(path.name, content.decode("utf-8-sig"))
        except (UpdateFileError, UnicodeDecodeError) as exc:
            reason = str(exc) if isinstance(exc, UpdateFileError) else f"{path.name}: not UTF-8 text"
            move_to_quarantine(path, inbox, reason)
            with transaction(con):
                run(con, "INSERT INTO training_update_file VALUES (?, ?, ?, 0, 0, 'quarantined', ?, ?, ?)",
                    [digest, source, path.name, reason, run_id, now])
                _reject_rows(con, result, source, path.name, [(1, None, None, reason)], run_id=run_id, now=now)
            result.quarantined.append((path.name, reason))
            continue
        with transaction(con):
            before = len(result.rejects)
            _reject_rows(con, result, source, path.name, problems, run_id=run_id, now=now)
            queue_updates(con, source, path.name, rows, result, run_id=run_id, now=now)
            run(con, "INSERT INTO training_update_file VALUES (?, ?, ?, ?, ?, 'taken', NULL, ?, ?)",
                [digest, source, path.name, len(rows) + len(problems), len(result.rejects) - before, run_id, now])


def _as_text(value) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _pulled(con, source: str, invoice_id: str) -> dict:
    """The invoice as we last knew it: the version we pulled, with our own applied updates on top."""
    rows = current_versions(con, source, "invoices", [invoice_id]).to_dicts()
    known = {"version": rows[0]["version"], **{f: _as_text(rows[0][f]) for f in UPDATABLE}} if rows else {}
    for update in query(con, "SELECT * FROM training_update WHERE source = ? AND invoice_id = ? AND status = 'applied' "
                             "AND new_version > ? ORDER BY new_version", [source, invoice_id,
                                                                          known.get("version") or 0]).to_dicts():
        known.update({f: _as_text(update[f]) for f in UPDATABLE if update[f] is not None}, version=update["new_version"])
    return known


def send_updates(con, source: str, client: TrainingClient, result: PushResult, *, run_id: str, now: datetime) -> None:
    pending = query(con, "SELECT * FROM training_update WHERE source = ? AND status = 'pending' "
                         "ORDER BY created_at, origin, row_no", [source]).to_dicts()
    for update in pending:
        try:
            status, new_version, detail = _send_update(con, client, result, source, update, run_id=run_id, now=now)
        except TrainingApiError as exc:
            result.failed.append(f"update of {update['invoice_number']}: {exc}; retried next run")
            continue
        run(con, "UPDATE training_update SET status = ?, new_version = ?, detail = ?, updated_at = ? "
                 "WHERE update_id = ?", [status, new_version, detail, now, update["update_id"]])
        result.updates_applied += status == "applied"


def _send_update(con, client: TrainingClient, result: PushResult, source: str, update: dict, *, run_id: str,
                 now: datetime) -> tuple[str, int | None, str | None]:
    """(status, new version, detail) of one update, following the rules of ``sources.training.push``."""
    invoice_id, number = update["invoice_id"], update["invoice_number"]
    ours = {f: _as_text(update[f]) for f in UPDATABLE if update[f] is not None}
    pulled = _pulled(con, source, invoice_id)
    if pulled.get("version") is None:  # never pulled whole (its version was unreadable): nothing to send against
        return "pending", None, f"no readable version of invoice {number} was pulled yet"
    answer = client.update_invoice(invoice_id, pulled["version"], ours)
    if answer.status == 412:
        current = client.invoice(invoice_id)
        remaining, conflicts = after_precondition_failed(ours, pulled, current.body)
        for conflict in conflicts:
            _conflict(con, result, key=(update["update_id"], conflict.field), invoice_id=invoice_id, number=number,
                      kind="field_changed", field_name=conflict.field, ours=conflict.ours, theirs=conflict.theirs,
                      run_id=run_id, now=now,
                      detail=f"invoice {number}: {conflict.field} was changed in the training system to "
                             f"{conflict.theirs!r} (it was {conflict.pulled!r}); ours {conflict.ours!r} "
                             f"({update['origin']}) was not sent: the system wins")
        if not remaining:
            return ("conflict" if conflicts else "already"), current.body.get("version"), None
        answer = client.update_invoice(invoice_id, current.body["version"], remaining)
        if answer.status == 412:
            return "pending", None, "the invoice moved twice while we sent; tried again next run"
    if answer.status == 200:
        return "applied", answer.body.get("version"), None
    status = "void" if answer.status == 409 else "refused"
    _conflict(con, result, key=(update["update_id"],), invoice_id=invoice_id, number=number, kind=f"update_{status}",
              run_id=run_id, now=now, detail=f"invoice {number}: the update from {update['origin']} was refused: "
                                             f"HTTP {answer.status} {answer.body.get('error')}")
    return status, None, f"HTTP {answer.status}: {answer.body.get('error')}"
