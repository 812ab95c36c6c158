"""The export ledger as accounting-entries export APIs offer it: what a system has not exported
yet (``pending``), what it must re-export because it changed since an instant (``since``), and
``mark`` -- at most 10 ids per call, each answered on its own, each with a note in the entry's
timeline.

A ``system_id`` is any string naming the consuming system (an ERP, an accountant's tool); it
need not be a destination of the tenant file. An entry counts as exported to a system when
``export_log`` holds a row for that system, that entry and the entry's current content hash.
Marking an entry makes it immutable (DESIGN invariant 4): a later change to its day produces a
reversal and a correction, which the system then finds as pending.

Pages are ordered by (created_at, entry_date, source, business_date, version, entry_id): the
order in which the closes built the entries. The cursor is the key of the last entry returned,
so marking entries while paging skips nothing, and an entry built during the walk comes later
in it rather than before the cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import duckdb
import polars as pl

from destinations import tracking
from schemas.tables import EntryTimeline, JournalLine
from warehouse.db import insert, query, read_model, transaction

MAX_IDS_PER_MARK = 10  # what accounting-entries export APIs accept per call
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

_ORDER = ("created_at", "entry_date", "source", "business_date", "version", "entry_id")
_KEY_TYPES = ("TIMESTAMPTZ", "DATE", "VARCHAR", "DATE", "BIGINT", "VARCHAR")


class EntriesRequestError(ValueError):
    """A request the ledger refuses; the message names the value and what was expected."""


@dataclass(frozen=True)
class EntryPage:
    entries: list[dict]  # header columns plus ``lines``, Python values (Decimal money, dates)
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class MarkResult:
    id: str
    status: str  # marked | already_marked | unknown


def pending(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, *, limit: int = DEFAULT_LIMIT,
            after: str | None = None) -> EntryPage:
    """Entries ``system_id`` has not exported yet, with their lines, a page at a time."""
    return _page(con, tenant_id, system_id, changed_since=None, limit=limit, after=after)


def since(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, not_exported_since: datetime, *,
          limit: int = DEFAULT_LIMIT, after: str | None = None) -> EntryPage:
    """Entries built at or after ``not_exported_since`` that ``system_id`` does not hold as they are now:
    new days, drafts rebuilt, and the reversal plus correction of any day that changed after export.

    A system that exported everything up to T asks this to re-export what changed; entries it
    already marked since T are not repeated.
    """
    if not_exported_since.tzinfo is None:
        raise EntriesRequestError(f"not_exported_since {not_exported_since.isoformat()!r}: give a UTC offset "
                                  "(e.g. 2026-03-11T10:00:00Z); stored times are UTC")
    return _page(con, tenant_id, system_id, changed_since=not_exported_since, limit=limit, after=after)


def mark(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, ids: list[str], note: str | None, *,
         now: datetime, actor: str) -> list[MarkResult]:
    """Record ``ids`` as exported to ``system_id``, each in ``export_log`` with its content hash and in
    its timeline with ``note``. Marking again is harmless (``already_marked``, nothing written), so a
    client may retry a call whose answer it lost; an id given twice is answered once."""
    wanted = list(dict.fromkeys(_checked_ids(ids)))
    with transaction(con):
        hashes = _content_hashes(con, tenant_id, wanted)
        done = _marked(con, tenant_id, system_id, hashes)
        fresh = [i for i in wanted if i in hashes and i not in done]
        _record(con, tenant_id, system_id, {i: hashes[i] for i in fresh}, note, now=now, actor=actor)
    return [MarkResult(i, "unknown" if i not in hashes else "already_marked" if i in done else "marked")
            for i in wanted]


def json_value(value: object) -> str:
    """``json.dumps(default=...)`` for entries: money as its exact decimal text, dates in ISO 8601."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _checked_ids(ids: object) -> list[str]:
    """``ids`` as a client sent it (a JSON body, a command line), or a refusal saying what is wrong."""
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise EntriesRequestError("ids: expected a list of entry ids (non-empty strings)")
    if not ids:
        raise EntriesRequestError("ids: give at least one entry id")
    if len(ids) > MAX_IDS_PER_MARK:
        raise EntriesRequestError(f"ids: {len(ids)} given, at most {MAX_IDS_PER_MARK} entries can be marked "
                                  "per call; split them into several calls")
    return ids


def _content_hashes(con: duckdb.DuckDBPyConnection, tenant_id: str, ids: list[str]) -> dict[str, str]:
    rows = query(con, "SELECT entry_id, content_hash FROM journal_entry WHERE tenant = ? "
                      "AND entry_id IN (SELECT unnest(?::VARCHAR[]))", [tenant_id, ids])
    return dict(rows.iter_rows())


def _marked(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, hashes: dict[str, str]) -> set[str]:
    """The ids ``system_id`` already holds with their current content."""
    rows = query(con, """
        SELECT object_id, content_hash FROM export_log
        WHERE tenant = ? AND system_id = ? AND object_type = 'journal_entry'
          AND object_id IN (SELECT unnest(?::VARCHAR[]))
    """, [tenant_id, system_id, list(hashes)])
    return {entry_id for entry_id, content in rows.iter_rows() if hashes[entry_id] == content}


def _record(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, hashes: dict[str, str],
            note: str | None, *, now: datetime, actor: str) -> None:
    entries = pl.DataFrame({"entry_id": list(hashes), "content_hash": list(hashes.values())},
                           schema={"entry_id": pl.String, "content_hash": pl.String})
    at = pl.lit(now).cast(pl.Datetime("us", "UTC"))
    tracking.log_objects(con, tenant=tenant_id, system_id=system_id, object_type="journal_entry",
                         objects=entries.rename({"entry_id": "object_id"}), exported_at=now, note=note)
    insert(con, EntryTimeline, entries.select(
        "entry_id", pl.lit(system_id).alias("system_id"), pl.lit("exported").alias("event"),
        pl.lit(note, pl.String).alias("note"), pl.lit(actor).alias("actor"), at.alias("recorded_at")))


def _page(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, *, changed_since: datetime | None,
          limit: int, after: str | None) -> EntryPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise EntriesRequestError(f"limit {limit}: expected 1 to {MAX_LIMIT}")
    conditions, params = ["e.tenant = ?"], [tenant_id]
    if changed_since is not None:
        conditions.append("e.created_at >= ?")
        params.append(changed_since)
    if after is not None:
        placeholders = ", ".join(f"?::{t}" for t in _KEY_TYPES)
        conditions.append(f"({', '.join('e.' + c for c in _ORDER)}) > ({placeholders})")
        params.extend(_decode_cursor(after))
    headers = query(con, f"""
        SELECT e.entry_id, e.source, e.business_date, e.entry_date, e.version, e.kind, e.reverses,
               e.content_hash, e.line_count, e.created_at
        FROM journal_entry e
        WHERE {' AND '.join(conditions)}
          AND NOT EXISTS (SELECT 1 FROM export_log x WHERE x.tenant = e.tenant AND x.system_id = ?
                          AND x.object_type = 'journal_entry' AND x.object_id = e.entry_id
                          AND x.content_hash = e.content_hash)
        ORDER BY {', '.join('e.' + c for c in _ORDER)}
        LIMIT ?
    """, [*params, system_id, limit + 1])
    entries = headers.head(limit).to_dicts()
    _attach_lines(con, entries)
    more = headers.height > limit
    return EntryPage(entries, _encode_cursor(entries[-1]) if more else None)


def _attach_lines(con: duckdb.DuckDBPyConnection, entries: list[dict]) -> None:
    if not entries:
        return
    lines = read_model(con, JournalLine, "entry_id IN (SELECT unnest(?::VARCHAR[]))",
                       [[e["entry_id"] for e in entries]], order_by="entry_id, line_no")
    by_entry: dict[str, list[dict]] = {}
    for line in lines.drop("entry_date").iter_rows(named=True):
        by_entry.setdefault(line.pop("entry_id"), []).append(line)
    for entry in entries:
        entry["lines"] = by_entry.get(entry["entry_id"], [])


def _encode_cursor(entry: dict) -> str:
    key = json.dumps([entry[c] for c in _ORDER], default=json_value, separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list:
    """The key an earlier page ended on; anything else is refused rather than guessed at."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created, entry_date, source, business_date, version, entry_id = key
        return [datetime.fromisoformat(created), date.fromisoformat(entry_date), str(source),
                date.fromisoformat(business_date), int(version), str(entry_id)]
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise EntriesRequestError(f"cursor {cursor!r}: not a cursor this ledger gave out "
                                  "(pass next_cursor from the previous page unchanged)") from None
