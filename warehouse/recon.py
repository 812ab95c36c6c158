"""Reconciliation state in the tenant's DuckDB file.

* ``bank_line`` / ``open_item``: what the inbox (and later the bank and billing
  sources) delivered. A bank line is a fact: the same id with other content is
  rejected. An open item may change (its source reports a new open amount).
* ``match``: append-only decisions. ``auto``/``confirmed`` rows apply money, a
  ``reversed`` row cancels the row it names, a ``rejected`` row bars a pair for good.
  What is still open is always derived from it, so a rerun decides nothing twice.
* ``match_suggestion`` and ``discrepancy``: the last run's review queue and problems.
* Bank journal entries: one entry per booking day of matched lines (source ``bank``),
  versioned like every other journal (a change after export is reversed and corrected).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from schemas.money import MONEY_DTYPE
from schemas.tables import BankLine, Discrepancy, InboxFile, Match, MatchSuggestion, OpenItem, polars_schema
from schemas.tenant import Tenant
from sources.recon_csv import BANK_COLUMNS, ITEM_COLUMNS, InputError, read_table
from transforms.journal import BUILT_LINE_SCHEMA
from transforms.recon.engine import Reconciliation
from transforms.recon.names import normalise_iban
from warehouse import rejects as reject_store
from warehouse.db import insert, query, read_model, run, transaction
from warehouse.journals import plan_days, write_plan

APPLIED = ("auto", "confirmed")
ACTIVE_SQL = """
    SELECT * FROM match m
    WHERE m.decision IN ('auto', 'confirmed')
      AND NOT EXISTS (SELECT 1 FROM match r WHERE r.decision = 'reversed' AND r.reverses = m.match_id)
"""
ALERT_KINDS = ("double_payment", "overpayment", "currency_mismatch", "partial_payment", "write_off")
AGEING_KINDS = ("unmatched_line", "suggestion", "stale_item")


INBOX_TABLES = {"bank": "bank_line", "items": "open_item", "invoices": "issued_invoice"}


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- the inbox

@dataclass
class InboxResult:
    loaded: list[tuple[str, int]] = field(default_factory=list)  # (file name, rows)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    row_rejects: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. a statement loaded before from another file


def take_inbox(con: duckdb.DuckDBPyConnection, tenant: Tenant, *, run_id: str, now: datetime) -> InboxResult:
    """Load every new file of ``<inbox>/bank`` and ``<inbox>/items`` (BANK.csv / ITEMS.csv of
    INTERFACES §1). A file seen before (same bytes) is skipped; a malformed one is moved to
    ``<inbox>/quarantine`` with a ``.reason.txt`` beside it while the good ones go on."""
    inbox = tenant.inbox_path()
    result = InboxResult()
    known = {row[0] for row in run(con, "SELECT sha256 FROM inbox_file")}
    for kind, columns in (("bank", BANK_COLUMNS), ("items", ITEM_COLUMNS)):
        folder = inbox / kind
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in known:
                continue
            if kind == "bank" and path.suffix.lower() != ".csv":  # a statement file: CODA, camt, MT940, OFX
                _take_statement(con, path, inbox, digest, result, run_id=run_id, now=now)
                known.add(digest)
                continue
            if path.suffix.lower() != ".csv":
                continue
            try:
                frame = read_table(path, columns)
            except InputError as exc:
                quarantine_file(con, path, inbox, kind, digest, str(exc), run_id=run_id, now=now)
                result.quarantined.append((path.name, str(exc)))
                continue
            with transaction(con):
                rejected = _load_bank(con, frame, path, run_id, now) if kind == "bank" else _load_items(con, frame)
                insert(con, InboxFile, pl.DataFrame([{
                    "sha256": digest, "name": path.name, "kind": kind, "rows": frame.height, "status": "loaded",
                    "reason": None, "run_id": run_id, "taken_at": now}]))
            known.add(digest)
            result.loaded.append((path.name, frame.height))
            result.row_rejects += rejected
    return result


def _take_statement(con, path: Path, inbox: Path, digest: str, result: InboxResult, *, run_id: str,
                    now: datetime) -> None:
    """A bank statement file dropped into ``<inbox>/bank``: parsed by its format, lines stored once."""
    from sources.bank_files.model import StatementError
    from sources.bank_files.source import read_statement_file, statement_rows
    from warehouse.bank_statements import store_statements

    try:
        _, statements, rows = read_statement_file(path.read_bytes(), path.name)
    except StatementError as exc:
        quarantine_file(con, path, inbox, "bank", digest, str(exc), run_id=run_id, now=now)
        result.quarantined.append((path.name, str(exc)))
        return
    new, warnings = store_statements(con, "inbox", statement_rows(path.name, digest, statements, rows), rows,
                                     run_id=run_id, now=now)
    result.warnings += warnings
    insert(con, InboxFile, pl.DataFrame([{
        "sha256": digest, "name": path.name, "kind": "bank", "rows": new, "status": "loaded", "reason": None,
        "run_id": run_id, "taken_at": now}]))
    result.loaded.append((path.name, new))


def move_to_quarantine(path: Path, inbox: Path, reason: str) -> None:
    """``<inbox>/quarantine/<name>`` with ``<name>.reason.txt`` beside it."""
    target = inbox / "quarantine"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    shutil.move(str(path), target / path.name)


def quarantine_file(con, path: Path, inbox: Path, kind: str, digest: str, reason: str, *, run_id: str,
                    now: datetime) -> None:
    """Move a bad inbox file to ``<inbox>/quarantine`` with a ``.reason.txt``; log it and open a reject."""
    move_to_quarantine(path, inbox, reason)
    with transaction(con):
        insert(con, InboxFile, pl.DataFrame([{
            "sha256": digest, "name": path.name, "kind": kind, "rows": 0, "status": "quarantined",
            "reason": reason, "run_id": run_id, "taken_at": now}]))
        rows = reject_store.with_ids(pl.DataFrame([{
            "source": "inbox", "table_name": INBOX_TABLES[kind],
            "record_id": path.name, "record_version": digest[:12], "business_date": None, "column_name": None,
            "value": None, "reason": reason, "payload": None}], schema_overrides={"business_date": pl.Date}),
            stage="reconcile", run_id=run_id, now=now)
        insert(con, reject_store.Reject, rows)


def _load_bank(con, frame: pl.DataFrame, path: Path, run_id: str, now: datetime) -> int:
    """New lines are inserted, lines seen before are skipped; an id reused for other content
    is rejected (a bank line never changes) and the rest of the file goes on."""
    schema = polars_schema(BankLine)
    incoming = frame.with_columns(*(pl.lit(None, schema[c]).alias(c) for c in schema if c not in frame.columns))
    existing = read_model(con, BankLine, "bank_line_id IN (SELECT unnest(?::VARCHAR[]))",
                          [incoming["bank_line_id"].to_list()])
    columns = [c.name for c in BANK_COLUMNS]
    clash = incoming.join(existing, on="bank_line_id", how="inner", suffix="_stored").filter(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_stored")) for c in columns if c != "bank_line_id"]))
    if clash.height:
        rows = reject_store.with_ids(clash.select(
            pl.lit("inbox").alias("source"), pl.lit("bank_line").alias("table_name"),
            pl.col("bank_line_id").alias("record_id"), pl.lit(None, pl.String).alias("record_version"),
            pl.col("booking_date").alias("business_date"), pl.lit("bank_line_id").alias("column_name"),
            pl.col("bank_line_id").alias("value"),
            pl.lit(f"{path.name}: this bank line id was loaded before with other content; kept the first")
            .alias("reason"), pl.lit(None, pl.String).alias("payload")),
            stage="reconcile", run_id=run_id, now=now)
        insert(con, reject_store.Reject, rows.join(
            query(con, "SELECT problem_id FROM rejects WHERE resolved_run_id IS NULL"), on="problem_id", how="anti"))
    insert(con, BankLine, incoming.join(existing.select("bank_line_id"), on="bank_line_id", how="anti"))
    return clash.height


def _load_items(con, frame: pl.DataFrame) -> int:
    """Items are replaced by their latest version (an open amount can change at the source)."""
    from warehouse.staging import replace_items

    replace_items(con, frame)
    return 0


# --------------------------------------------------------------------------- what is open

def active_matches(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(con, ACTIVE_SQL + " ORDER BY bank_line_id, item_id NULLS LAST, match_id")


def open_state(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(bank lines with ``amount`` = what is still unapplied, items with ``amount_open`` = what is
    still open, barred pairs, items settled already with their amount as issued).

    An item's ``amount_open`` is what it asks to be paid in total; what our matches applied is
    taken off it. An item re-delivered with less than was applied (its source recorded the
    payment too) is settled, never open for the opposite sign."""
    bank = query(con, f"""
        WITH applied AS (SELECT bank_line_id, sum(amount_applied) AS applied FROM ({ACTIVE_SQL}) GROUP BY 1)
        SELECT b.* REPLACE ((b.amount - coalesce(a.applied, 0))::DECIMAL(18,2) AS amount)
        FROM bank_line b LEFT JOIN applied a USING (bank_line_id)
        WHERE b.amount - coalesce(a.applied, 0) <> 0
        ORDER BY b.bank_line_id
    """).cast(polars_schema(BankLine))  # type: ignore[arg-type]
    items = query(con, f"""
        WITH applied AS (SELECT item_id, sum(amount_applied) AS applied FROM ({ACTIVE_SQL})
                         WHERE item_id IS NOT NULL GROUP BY 1),
        state AS (SELECT i.*, (i.amount_open - coalesce(a.applied, 0))::DECIMAL(18,2) AS remaining
                  FROM open_item i LEFT JOIN applied a USING (item_id))
        SELECT * FROM state ORDER BY item_id
    """)
    still_open = (pl.col("remaining") != 0) & (pl.col("remaining").sign() == pl.col("amount_open").sign())
    schema = polars_schema(OpenItem)
    open_items = items.filter(still_open).with_columns(pl.col("remaining").alias("amount_open")).select(
        list(schema)).cast(schema)  # type: ignore[arg-type]
    settled = items.filter(~still_open & (pl.col("amount_open") != 0)).select(list(schema)).cast(
        schema)  # type: ignore[arg-type]
    barred = query(con, "SELECT DISTINCT bank_line_id, item_id FROM match WHERE decision IN ('rejected', 'reversed') "
                        "AND item_id IS NOT NULL ORDER BY ALL")
    return bank, open_items, barred, settled


# --------------------------------------------------------------------------- storing a run

@dataclass
class Recorded:
    new_rows: int
    suggestions: int
    problems: pl.DataFrame  # the discrepancy rows stored
    new_problems: pl.DataFrame  # those not seen by an earlier run


def record(con: duckdb.DuckDBPyConnection, outcome: Reconciliation, *, run_id: str, now: datetime,
           as_of: date, alert_after_days: int) -> Recorded:
    """Append the run's matches, replace the review queue and the problem list."""
    rows = outcome.matches.with_columns(
        pl.struct("bank_line_id", "item_id", "rule").map_elements(
            lambda r: _sha(run_id, r["bank_line_id"], r["item_id"], r["rule"]), return_dtype=pl.String
        ).alias("match_id") if outcome.matches.height else pl.lit(None, pl.String).alias("match_id"),
        pl.lit("auto").alias("decision"), pl.lit(run_id).alias("run_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("decided_at"),
        pl.lit(None, pl.String).alias("reverses"), pl.lit("ledgerflow").alias("decided_by"),
        pl.lit(None, pl.String).alias("note"),
    )
    suggestions = pl.DataFrame(
        [{"bank_line_id": s.bank_line_id, "item_id": item, "rank": rank, "why": s.why, "run_id": run_id}
         for s in outcome.suggestions for rank, item in enumerate(s.candidates, 1)],
        schema=polars_schema(MatchSuggestion))
    with transaction(con):
        insert(con, Match, rows)
        problems = _problems(con, outcome, run_id=run_id, as_of=as_of)  # sees this run's matches
        previous = query(con, "SELECT problem_id, first_seen_run FROM discrepancy")
        problems = problems.join(previous, on="problem_id", how="left", suffix="_old").with_columns(
            pl.coalesce("first_seen_run_old", "first_seen_run").alias("first_seen_run")).drop("first_seen_run_old")
        run(con, "DELETE FROM match_suggestion")
        insert(con, MatchSuggestion, suggestions)
        run(con, "DELETE FROM discrepancy")
        insert(con, Discrepancy, problems)
    alertable = (pl.col("kind").is_in(ALERT_KINDS)
                 | (pl.col("kind").is_in(AGEING_KINDS) & (pl.col("age_days") >= alert_after_days)))
    new_problems = problems.filter(alertable & (pl.col("first_seen_run") == run_id))
    return Recorded(rows.height, len(outcome.suggestions), problems, new_problems)


def _problems(con, outcome: Reconciliation, *, run_id: str, as_of: date) -> pl.DataFrame:
    """The engine's discrepancies plus suggestions and items still open, aged to ``as_of``."""
    line_dates = query(con, "SELECT bank_line_id, booking_date FROM bank_line")
    engine = outcome.discrepancies.join(line_dates, on="bank_line_id", how="left").select(
        "kind", "bank_line_id", "item_id", "amount",
        (pl.lit(as_of) - pl.col("booking_date")).dt.total_days().alias("age_days"), "detail")
    suggested = pl.DataFrame(
        [{"kind": "suggestion", "bank_line_id": s.bank_line_id, "item_id": None,
          "detail": f"{s.why}: {', '.join(s.candidates)}"} for s in outcome.suggestions],
        schema={"kind": pl.String, "bank_line_id": pl.String, "item_id": pl.String, "detail": pl.String},
    ).join(line_dates, on="bank_line_id", how="left").select(
        "kind", "bank_line_id", "item_id", pl.lit(None, MONEY_DTYPE).alias("amount"),
        (pl.lit(as_of) - pl.col("booking_date")).dt.total_days().alias("age_days"), "detail")
    items = open_state(con)[1]
    stale = items.select(
        pl.lit("stale_item").alias("kind"), pl.lit(None, pl.String).alias("bank_line_id"), "item_id",
        pl.col("amount_open").alias("amount"),
        (pl.lit(as_of) - pl.coalesce("due_date", "issue_date")).dt.total_days().alias("age_days"),
        pl.format("{} {} still open", pl.col("kind"), pl.col("document_number")).alias("detail"),
    ).filter(pl.col("age_days") > 0)
    frame = pl.concat([engine, suggested, stale], how="vertical_relaxed")
    ids = [_sha(k, b, i) for k, b, i in frame.select("kind", "bank_line_id", "item_id").iter_rows()]
    return frame.with_columns(
        pl.Series("problem_id", ids, pl.String), pl.col("age_days").cast(pl.Int64),
        pl.lit(run_id).alias("first_seen_run"), pl.lit(run_id).alias("run_id"),
    ).unique("problem_id", keep="first", maintain_order=True).sort("kind", "bank_line_id", "item_id",
                                                                     nulls_last=True)


# --------------------------------------------------------------------------- a person's decisions

@dataclass
class Applied:
    confirmed: int = 0
    rejected: int = 0
    reversed: int = 0
    problems: list[str] = field(default_factory=list)  # per decision row that could not be applied


def apply_decisions(con: duckdb.DuckDBPyConnection, decisions: pl.DataFrame, *, run_id: str, now: datetime,
                    decided_by: str, source: str = "decisions") -> Applied:
    """Apply a reviewer's DECISIONS.csv: ``confirm`` (optionally with an amount), ``reject`` (the
    pair is never proposed again) and ``reverse`` (undo every active row of the line, and bar
    the pair). Each row is checked; a row that cannot apply is reported with its reason and the
    rest go on. A decision already recorded is not recorded twice."""
    bank, items, barred, _ = open_state(con)
    all_lines = query(con, "SELECT bank_line_id, amount, currency FROM bank_line")
    all_items = query(con, "SELECT item_id, amount_open, currency FROM open_item")
    line_rem = dict(zip(bank["bank_line_id"].to_list(), bank["amount"].to_list()))
    item_rem = dict(zip(items["item_id"].to_list(), items["amount_open"].to_list()))
    currency = dict(zip(all_lines["bank_line_id"].to_list(), all_lines["currency"].to_list()))
    item_currency = dict(zip(all_items["item_id"].to_list(), all_items["currency"].to_list()))
    barred_pairs = set(barred.iter_rows())
    active = active_matches(con).to_dicts()
    out = Applied()
    rows: list[dict] = []

    def add(line_id, item_id, amount, decision, rule, *, reverses=None, note=None, reason=None, confidence=1.0):
        rows.append({"match_id": _sha(run_id, line_id, item_id, decision, reverses, len(rows)),
                     "bank_line_id": line_id, "item_id": item_id, "amount_applied": amount, "rule": rule,
                     "confidence": confidence, "reason": reason, "decision": decision, "run_id": run_id,
                     "decided_at": now, "reverses": reverses, "decided_by": decided_by, "note": note})

    for number, row in enumerate(decisions.iter_rows(named=True), 1):
        line_id, item_id, decision = row["bank_line_id"], row["item_id"], row["decision"]
        if decision is None:
            continue  # left for later by the reviewer
        where = f"{source}: row {number} ({line_id}, {item_id})"
        note = row.get("note")
        if item_id is None:
            out.problems.append(f"{where}: item_id is required for a decision")
            continue
        if line_id not in currency or item_id not in item_currency:
            out.problems.append(f"{where}: unknown {'bank line' if line_id not in currency else 'item'}")
            continue
        if decision.startswith("reject"):
            if (line_id, item_id) not in barred_pairs:
                add(line_id, item_id, 0, "rejected", "manual", note=note)
                barred_pairs.add((line_id, item_id))
                out.rejected += 1
            continue
        if decision.startswith("reverse"):
            undone = [m for m in active if m["bank_line_id"] == line_id]
            for match in undone:
                add(line_id, match["item_id"], -match["amount_applied"], "reversed", match["rule"],
                    reverses=match["match_id"], note=note, reason=match["reason"])
                line_rem[line_id] = line_rem.get(line_id, 0) + match["amount_applied"]  # open again
                if match["item_id"] is not None:
                    item_rem[match["item_id"]] = item_rem.get(match["item_id"], 0) + match["amount_applied"]
            active = [m for m in active if m["bank_line_id"] != line_id]
            out.reversed += len(undone)
            if (line_id, item_id) not in barred_pairs:
                add(line_id, item_id, 0, "rejected", "manual", note=note)
                barred_pairs.add((line_id, item_id))
                out.rejected += 1
            continue
        # confirm
        if currency[line_id] != item_currency[item_id]:
            out.problems.append(f"{where}: the line is in {currency[line_id]}, the item in {item_currency[item_id]}")
            continue
        if any(m["bank_line_id"] == line_id and m["item_id"] == item_id for m in active):
            continue  # matched already (by a rule or an earlier decision): applying it again would double it
        left, open_ = line_rem.get(line_id, 0), item_rem.get(item_id, 0)
        if not left or not open_:
            out.problems.append(f"{where}: the {'line is fully applied' if not left else 'item is settled'} already")
            continue
        if (left > 0) != (open_ > 0):
            out.problems.append(f"{where}: the line ({left}) and the item ({open_}) have opposite signs")
            continue
        amount = row.get("amount_applied")
        amount = amount if amount is not None else (left if abs(left) <= abs(open_) else open_)
        if (amount > 0) != (left > 0) or abs(amount) > abs(left) or abs(amount) > abs(open_):
            out.problems.append(f"{where}: amount {amount} is more than the line ({left}) or the item ({open_}) "
                                f"has open, or has the wrong sign")
            continue
        add(line_id, item_id, amount, "confirmed", "manual", note=note)
        active.append(rows[-1])
        line_rem[line_id] = left - amount
        item_rem[item_id] = open_ - amount
        out.confirmed += 1
    if rows:
        frame = pl.DataFrame(rows, schema=polars_schema(Match))
        with transaction(con):
            insert(con, Match, frame)
            run(con, "DELETE FROM match_suggestion WHERE (bank_line_id, item_id) IN "
                     "(SELECT (bank_line_id, item_id) FROM (SELECT unnest(?::VARCHAR[]) AS bank_line_id, "
                     "unnest(?::VARCHAR[]) AS item_id))",
                [frame["bank_line_id"].to_list(), frame["item_id"].to_list()])
    return out


# --------------------------------------------------------------------------- bank journal

def reconciliation_status(con: duckdb.DuckDBPyConnection) -> dict:
    """Where reconciliation stands over every run so far, in the REPORT.json shape of INTERFACES §1
    (``bank_lines``/``items`` count everything loaded; ``by_rule`` counts active rows)."""
    active = active_matches(con)
    lines = query(con, "SELECT bank_line_id FROM bank_line ORDER BY 1")["bank_line_id"].to_list()
    items = query(con, "SELECT item_id FROM open_item ORDER BY 1")["item_id"].to_list()
    matched_lines = set(active.filter(pl.col("item_id").is_not_null())["bank_line_id"].to_list())
    matched_items = set(active["item_id"].drop_nulls().to_list())
    queue = query(con, "SELECT bank_line_id, list(item_id ORDER BY rank, item_id) AS candidates, any_value(why) AS why "
                       "FROM match_suggestion GROUP BY bank_line_id ORDER BY bank_line_id")
    problems = query(con, "SELECT kind, bank_line_id, item_id, amount, age_days, detail FROM discrepancy "
                          "ORDER BY kind, bank_line_id, item_id")
    by_rule = dict(sorted(active.group_by("rule").len().iter_rows())) if active.height else {}
    return {
        "bank_lines": len(lines), "items": len(items),
        "matched_lines": len(matched_lines), "matched_items": len(matched_items),
        "unmatched_lines": [b for b in lines if b not in matched_lines],
        "unmatched_items": sorted(set(open_state(con)[1]["item_id"].to_list()) - matched_items),
        "suggestions": [{"bank_line_id": b, "candidates": c, "why": w} for b, c, w in queue.iter_rows()],
        "by_rule": by_rule,
        "discrepancies": [{k: (str(v) if k == "amount" and v is not None else v) for k, v in row.items()}
                          for row in problems.iter_rows(named=True)],
    }


def review_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The review file: one row per suggested pair, then the unmatched lines with no candidate;
    ``decision`` is left empty for the reviewer (confirm, reject, reverse)."""
    return query(con, """
        WITH queue AS (
            SELECT s.bank_line_id, s.item_id, s.rank, s.why FROM match_suggestion s
            UNION ALL
            SELECT d.bank_line_id, NULL, 1, d.detail FROM discrepancy d
            WHERE d.kind IN ('unmatched_line', 'double_payment', 'currency_mismatch')
              AND d.bank_line_id NOT IN (SELECT bank_line_id FROM match_suggestion)
        )
        SELECT q.bank_line_id, q.item_id, NULL::VARCHAR AS decision, NULL::VARCHAR AS amount_applied,
               NULL::VARCHAR AS note, q.why, b.booking_date, b.amount, b.currency, b.counterparty_name,
               b.remittance_info, i.document_number, i.amount_open, i.partner_name
        FROM queue q JOIN bank_line b USING (bank_line_id) LEFT JOIN open_item i USING (item_id)
        ORDER BY b.booking_date, q.bank_line_id, q.rank, q.item_id
    """)


def bank_journal_lines(con: duckdb.DuckDBPyConnection, tenant: Tenant) -> pl.DataFrame:
    """Built lines (BUILT_LINE_SCHEMA) of every bank line with active matches: the bank account
    against each item's account (receivable, payable, processor clearing), the write-off's
    account, and whatever of the line is still unapplied (suspense until it is matched)."""
    recon = tenant.reconciliation
    assert recon is not None
    accounts = recon.accounts
    mapping = tenant.mapping
    names = tenant.account_names
    rows = query(con, f"""
        SELECT m.bank_line_id, b.booking_date, b.bank_account, b.amount AS line_amount, b.currency,
               b.counterparty_name, m.item_id, m.amount_applied, m.reason,
               i.kind, i.document_number, i.partner_id, i.partner_name
        FROM ({ACTIVE_SQL}) m JOIN bank_line b USING (bank_line_id) LEFT JOIN open_item i USING (item_id)
        ORDER BY b.booking_date, m.bank_line_id, m.item_id NULLS LAST, m.reason
    """)
    if rows.is_empty():
        return pl.DataFrame(schema=BUILT_LINE_SCHEMA)
    gl_of_bank = {normalise_iban(k): v for k, v in recon.bank_accounts.items()}
    write_off = {"bank_fee": accounts.bank_fee, "processor_fee": accounts.processor_fee or accounts.bank_fee,
                 "discount": accounts.discount or accounts.bank_fee,
                 "rounding": accounts.rounding or mapping.rounding_account,
                 "fx": accounts.fx or accounts.bank_fee, "other": accounts.other or mapping.suspense_account}
    unapplied = accounts.unapplied or mapping.suspense_account
    out: list[dict] = []
    line_no: dict[date, int] = {}

    def post(day, account, cents, description, partner_id=None, partner_name=None, currency="EUR"):
        line_no[day] = line_no.get(day, 0) + 1
        debit, credit = (cents, 0) if cents > 0 else (0, -cents)
        out.append({"business_date": day, "line_no": line_no[day], "account": account,
                    "account_name": names.get(account, account), "partner_id": partner_id,
                    "partner_name": partner_name, "description": description,
                    "debit": _dec(debit), "credit": _dec(credit), "currency": currency, "vat_code": None})

    for line_id, group in rows.group_by("bank_line_id", maintain_order=True):
        first = group.row(0, named=True)
        day, cur = first["booking_date"], first["currency"]
        total = _cents(first["line_amount"])
        bank_gl = gl_of_bank.get(normalise_iban(first["bank_account"]), mapping.suspense_account)
        label = f"{line_id[0]} {first['counterparty_name'] or ''}".strip()
        post(day, bank_gl, total, f"Bank {label}", currency=cur)
        applied = 0
        for match in group.iter_rows(named=True):
            cents = _cents(match["amount_applied"])
            applied += cents
            if match["item_id"] is None:
                post(day, write_off[match["reason"] or "other"], -cents, f"Write-off ({match['reason']}) {label}",
                     currency=cur)
                continue
            kind = match["kind"]
            account = {"invoice": accounts.invoice, "bill": accounts.bill, "payout": accounts.payout}.get(
                kind, accounts.refund or (accounts.invoice if cents > 0 else accounts.bill))
            post(day, account, -cents, f"{match['document_number']} paid by {label}", match["partner_id"],
                 match["partner_name"], currency=cur)
        if total != applied:
            post(day, unapplied, applied - total, f"Unapplied part of {label}", currency=cur)
    return pl.DataFrame(out, schema=BUILT_LINE_SCHEMA)


def store_bank_journal(con: duckdb.DuckDBPyConnection, tenant: Tenant, *, run_id: str, now: datetime):
    """Rebuild the bank journal of every day that has (or had) matched lines; store new versions."""
    built = bank_journal_lines(con, tenant)
    days = set(built["business_date"].to_list()) | {
        row[0] for row in run(con, "SELECT DISTINCT business_date FROM journal_entry WHERE tenant = ? "
                                   "AND source = 'bank'", [tenant.id])}
    if not days:
        return None
    plan = plan_days(con, tenant, "bank", built, sorted(days))
    with transaction(con):
        write_plan(con, plan, tenant, "bank", tenant.reconciliation.journal_code, run_id=run_id, now=now)
    return plan


def _cents(value) -> int:
    return int(value * 100)


def _dec(cents: int):
    from decimal import Decimal

    return Decimal(cents) / 100
