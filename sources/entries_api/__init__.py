"""dlt source for an accounting-entries export API: the journal entries another system (another
ledgerflow tenant, or anything serving the same API) has not exported to us yet.

The API is ledgerflow's own (``destinations.entries_http``)::

    GET  {base_url}/v1/systems/{system_id}/entries?cursor=C&limit=N -> {"entries": [...], "next_cursor"}
    POST {base_url}/v1/systems/{system_id}/entries/mark {"ids": [<= 10], "note"} -> {"results": [...]}

with ``Authorization: Bearer <token>`` (the token in the environment variable ``token_env``).

What we read
============

Always the *pending* listing, for incremental runs and backfills alike. The other listing,
``not_exported_since=T``, is the pending entries the sender built at or after T: a subset of
the pending ones, chosen by when the sender built them, not by their business day, so a
backfill window would miss entries of its days built earlier and never exported. Entries we
already marked are in neither listing; a backfill therefore takes whatever is still pending,
whatever its day (staging files each entry under its own dates, and takes it once).

Raw tables keep every version of an entry we saw: ``entries`` (header) with primary key
(entry_id, lf_record_hash) and ``entry_lines`` with (entry_id, lf_record_hash, line_no), money
as DECIMAL(18,2) from the decimal text the API sends. A value that is not exact (an amount with
three decimals, a date that is not one) is set to null and described in ``lf_invalid``; staging
rejects the entry.

Marking, exactly once
=====================

An entry is marked exported only after dlt has loaded it (``Extraction.after_load``), in calls
of at most 10 ids, each with a note naming our tenant, source and load. If we die between the
load and the marks, or a mark call fails, the entries stay pending on the sender's side: the
next run fetches them again, which adds no raw version (same id and hash) and no journal entry
(staging sees the same content), and marks them. A mark the sender answers ``unknown`` (the
entry vanished since we read it) is logged as a warning; it is not an error of ours.

The API marks an entry with the content it has *when marked*: an entry the sender changes
between our read and our mark would be recorded as exported in its new content, which we never
saw. The API takes no content hash with a mark, so a client cannot close that window.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

from destinations.entries_api import MAX_IDS_PER_MARK
from schemas.money import MoneyError, parse_money
from sources.records import ExtractReport, parse_instant, record_hash

log = logging.getLogger("ledgerflow.sources.entries_api")

ENTRY_TEXT = ("entry_id", "source", "kind", "reverses", "content_hash")
LINE_TEXT = ("journal_code", "account", "account_name", "partner_id", "partner_name", "description", "currency",
             "vat_code", "document_ref")
_OURS = ("lf_invalid", "lf_extra", "lf_record_hash")


class EntriesApiError(RuntimeError):
    """The entries API refused or failed a call; the message names the call and what to do."""


def entries_schema():
    import pyarrow as pa

    return pa.schema([
        *(pa.field(name, pa.string()) for name in ENTRY_TEXT),
        pa.field("business_date", pa.date32()), pa.field("entry_date", pa.date32()),
        pa.field("version", pa.int64()), pa.field("line_count", pa.int64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        *(pa.field(name, pa.string()) for name in _OURS),
    ])


def lines_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("entry_id", pa.string()), pa.field("lf_record_hash", pa.string()), pa.field("line_no", pa.int64()),
        *(pa.field(name, pa.string()) for name in LINE_TEXT),
        pa.field("debit", pa.decimal128(18, 2)), pa.field("credit", pa.decimal128(18, 2)),
        pa.field("lf_invalid", pa.string()),
    ])


# --- HTTP ------------------------------------------------------------------------------------

class EntriesApi:
    """The two calls, through the run's session (retries 429/5xx honouring Retry-After; audit log)."""

    def __init__(self, base_url: str, system_id: str, token: str, token_env: str, session, timeout: float) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/systems/{quote(system_id, safe='')}/entries"
        self.system_id = system_id
        self.token_env = token_env
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._session = session
        self._timeout = timeout  # not money: seconds

    def _call(self, method: str, url: str, **kwargs) -> dict:
        from requests import HTTPError, RequestException

        where = f"entries API {method} {url}"
        try:
            response = self._session.request(method, url, headers=self._headers, timeout=self._timeout, **kwargs)
        except HTTPError as exc:
            raise self._refusal(where, exc.response) from None
        except RequestException as exc:
            raise EntriesApiError(f"{where}: no answer ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:  # a session that does not raise for status
            raise self._refusal(where, response)
        try:
            body = response.json()
        except ValueError:
            raise EntriesApiError(f"{where}: the reply is not JSON: {response.text[:200]!r}") from None
        if not isinstance(body, dict):
            raise EntriesApiError(f"{where}: expected a JSON object, got {json.dumps(body)[:200]}")
        return body

    def _refusal(self, where: str, response) -> EntriesApiError:
        status = response.status_code
        try:
            detail = response.json().get("error") or response.text[:200]
        except (ValueError, AttributeError):
            detail = response.text[:200]
        if status == 401:
            return EntriesApiError(f"{where}: HTTP 401 ({detail}): the token in {self.token_env} is wrong, "
                                   f"expired or revoked; ask the sending system for a new token of system "
                                   f"{self.system_id!r}")
        if status == 403:
            return EntriesApiError(f"{where}: HTTP 403 ({detail}): the token in {self.token_env} is not one of "
                                   f"system {self.system_id!r}; check system_id and the token")
        if status == 429:
            return EntriesApiError(f"{where}: HTTP 429 ({detail}): still rate limited after every retry; "
                                   "the next run takes what is pending")
        return EntriesApiError(f"{where}: HTTP {status}: {detail}")

    def pending_pages(self, page_size: int) -> Iterator[list]:
        """Every pending entry, a page at a time, following ``next_cursor`` to its end."""
        cursor: str | None = None
        while True:
            params: dict = {"status": "pending", "limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", self.url, params=params)
            entries, cursor = page.get("entries"), page.get("next_cursor")
            if not isinstance(entries, list) or not (cursor is None or isinstance(cursor, str) and cursor):
                raise EntriesApiError(f"entries API GET {self.url}: expected entries (a list) and next_cursor "
                                      f"(text or null), got {json.dumps(page)[:200]}")
            yield entries
            if cursor is None:
                return

    def mark(self, ids: list[str], note: str) -> list[dict]:
        """One mark call (at most 10 ids): the sender's answer per id."""
        if not 1 <= len(ids) <= MAX_IDS_PER_MARK:
            raise ValueError(f"mark takes 1 to {MAX_IDS_PER_MARK} ids per call, not {len(ids)}")
        reply = self._call("POST", f"{self.url}/mark", json={"ids": ids, "note": note})
        results = reply.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) and "id" in r for r in results):
            raise EntriesApiError(f"entries API POST {self.url}/mark: expected results with an id each, "
                                  f"got {json.dumps(reply)[:200]}")
        return results


# --- records ---------------------------------------------------------------------------------

def _problem(problems: dict, name: str, value: object, reason: str) -> None:
    problems[name] = {"value": value if isinstance(value, str) else repr(value), "reason": reason}


def _text(record: dict, name: str, problems: dict) -> str | None:
    value = record.get(name)
    if value is None or isinstance(value, str):
        return value
    _problem(problems, name, value, "is not text")
    return None


def _day(record: dict, name: str, problems: dict) -> date | None:
    value = record.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        _problem(problems, name, value, "is not an ISO date (YYYY-MM-DD)")
        return None


def _whole(value: object, name: str, problems: dict) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    _problem(problems, name, value, "is not a whole number")
    return None


def checked_entry(record: object, report: ExtractReport) -> tuple[dict, list[dict]]:
    """One entry as delivered -> (header row, line rows), exact or with the problem in ``lf_invalid``.

    Nothing is dropped here: an entry with a bad field is still loaded, for staging to reject
    it with the reason (and for the sender's data to stay inspectable).
    """
    record = record if isinstance(record, dict) else {"lf_not_an_object": record}
    digest = record_hash(record)
    problems: dict = {}
    header = {name: _text(record, name, problems) for name in ENTRY_TEXT}
    if not header["entry_id"]:
        _problem(problems, "entry_id", record.get("entry_id"), "is missing")
        header["entry_id"] = f"(no id {digest[:12]})"
    header["business_date"] = _day(record, "business_date", problems)
    header["entry_date"] = _day(record, "entry_date", problems)
    header["version"] = _whole(record.get("version"), "version", problems)
    header["line_count"] = _whole(record.get("line_count"), "line_count", problems)
    try:
        header["created_at"] = parse_instant(record["created_at"]) if record.get("created_at") is not None else None
    except ValueError as exc:
        _problem(problems, "created_at", record.get("created_at"), str(exc))
        header["created_at"] = None
    lines = record.get("lines")
    if not isinstance(lines, list):
        _problem(problems, "lines", lines, "is not a list of lines")
        lines = []
    rows = [_checked_line(line, position, header["entry_id"], digest, problems)
            for position, line in enumerate(lines, start=1)]
    extra = {k: v for k, v in record.items() if k not in {*ENTRY_TEXT, "business_date", "entry_date", "version",
                                                          "line_count", "created_at", "lines"}}
    header["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
    header["lf_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None
    header["lf_record_hash"] = digest
    report.delivered[("entries", header["entry_id"], digest)] += 1
    return header, rows


def _checked_line(line: object, position: int, entry_id: str, digest: str, entry_problems: dict) -> dict:
    if not isinstance(line, dict):
        _problem(entry_problems, f"lines[{position}]", line, "is not an object")
        line = {}
    problems: dict = {}
    row = {"entry_id": entry_id, "lf_record_hash": digest, **{name: _text(line, name, problems) for name in LINE_TEXT}}
    row["line_no"] = _whole(line.get("line_no"), "line_no", problems)
    if row["line_no"] is None:  # the key needs one; the problem stays recorded
        _problem(problems, "line_no", line.get("line_no"), "is missing or not a whole number")
        row["line_no"] = position
    for side in ("debit", "credit"):
        try:
            row[side] = parse_money(line.get(side))
        except MoneyError as exc:
            _problem(problems, side, line.get(side), str(exc))
            row[side] = None
    row["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
    return row


# --- the dlt source --------------------------------------------------------------------------

def entries_source(api: EntriesApi, *, page_size: int, report: ExtractReport):
    """Two tables from one walk of the pending listing: ``entries`` and ``entry_lines``."""
    import dlt
    import pyarrow as pa

    @dlt.resource(name="entry_pages", selected=False)
    def entry_pages():
        for page in api.pending_pages(page_size):
            yield [checked_entry(record, report) for record in page]

    @dlt.transformer(data_from=entry_pages, name="entries", write_disposition="merge",
                     primary_key=["entry_id", "lf_record_hash"])
    def entries(page: list):
        schema = entries_schema()
        yield pa.Table.from_pylist([header for header, _ in page], schema=schema)

    @dlt.transformer(data_from=entry_pages, name="entry_lines", write_disposition="merge",
                     primary_key=["entry_id", "lf_record_hash", "line_no"])
    def entry_lines(page: list):
        rows = [row for _, lines in page for row in lines]
        if rows:
            yield pa.Table.from_pylist(rows, schema=lines_schema())

    return dlt.source(name="entries_api")(lambda: [entry_pages, entries, entry_lines])()


# --- marking ---------------------------------------------------------------------------------

def loaded_entries(con, source: str, load_ids: list[str]) -> list[tuple[str, str]]:
    """(entry id, load id) of the entries these loads brought, whose id the sender gave us."""
    from sources.extract import dataset_name
    from warehouse.db import run, table_exists

    raw = dataset_name(source)
    if not load_ids or not table_exists(con, raw, "entries"):
        return []
    return [tuple(row) for row in run(con, f"""
        SELECT DISTINCT entry_id, _dlt_load_id FROM {raw}.entries
        WHERE _dlt_load_id IN (SELECT unnest(?::VARCHAR[])) AND json_extract(lf_invalid, '$.entry_id') IS NULL
        ORDER BY _dlt_load_id, entry_id
    """, [load_ids])]


def mark_loaded(api: EntriesApi, entries: list[tuple[str, str]], *, tenant_id: str, source: str) -> dict[str, int]:
    """Mark loaded entries exported, 10 per call, one note per load. A failed call is logged and
    left for the next run (its entries are still pending there); returns the count per status."""
    counts = {"marked": 0, "already_marked": 0, "unknown": 0, "failed": 0}
    by_load: dict[str, list[str]] = {}
    for entry_id, load_id in entries:
        by_load.setdefault(load_id, []).append(entry_id)
    for load_id, ids in by_load.items():
        note = f"imported by ledgerflow tenant {tenant_id}, source {source}, load {load_id}"
        for start in range(0, len(ids), MAX_IDS_PER_MARK):
            batch = ids[start:start + MAX_IDS_PER_MARK]
            try:
                results = api.mark(batch, note)
            except EntriesApiError as exc:
                counts["failed"] += len(batch)
                log.warning("source %s: %d entries loaded but not marked exported (%s); they stay pending at "
                            "the sender and the next run marks them", source, len(batch), exc)
                continue
            for result in results:
                status = result.get("status")
                counts[status if status in counts else "unknown"] += 1
                if status != "marked" and status != "already_marked":
                    log.warning("source %s: the sender answered %r for entry %s (load %s): it no longer has "
                                "it, or never had it", source, status, result["id"], load_id)
    return counts


def extraction(request):
    """``sources.extract`` entry point: the pending entries, marked once loaded."""
    from sources.extract import Extraction
    from warehouse.db import opened

    settings = request.settings
    url = request.base_url or settings.resolved_base_url()
    if not url:
        raise ValueError("entries_api: set base_url (the sending system's API root) or "
                         "LEDGERFLOW_ENTRIES_API_BASE_URL")
    token = os.environ.get(settings.token_env, "").strip()
    if not token:
        raise ValueError(f"entries_api: environment variable {settings.token_env} (our bearer token as system "
                         f"{settings.system_id!r}) is not set")
    api = EntriesApi(url, settings.system_id, token, settings.token_env, request.session, settings.timeout_seconds)

    def after_load(load_ids: list[str]) -> None:
        with opened(request.tenant.duckdb_path()) as con:
            entries = loaded_entries(con, request.name, load_ids)
        counts = mark_loaded(api, entries, tenant_id=request.tenant.id, source=request.name)
        log.info("source %s: %s", request.name, ", ".join(f"{n} {status}" for status, n in counts.items() if n)
                 or "nothing to mark")

    return Extraction(entries_source(api, page_size=settings.page_size, report=request.report), api.url, after_load)
