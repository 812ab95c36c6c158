"""dlt source for CodaBox's Delivery API: bank statements (CODA), payroll journals (SODA) and
purchase invoices that CodaBox delivers to an accounting office for its clients.

API shape followed
==================

CodaBox publishes no reference for its API; what is below comes from open-source clients
(Valuya/codabox-client in Java, with sample replies; Niboo's Odoo connector; the C# client in
NKUSIBO/CoDaBox) and from Odoo's SODA importer (``l10n_be_soda``). Root ``https://api.codabox.com/v2`` (sandbox
``https://sandbox-api.codabox.com/v2``); every request carries

* ``X-Software-Company: <uuid>`` — the key CodaBox gives the software vendor, and
* HTTP Basic credentials of the accounting office (what ``GET /v2/get-credentials/{one-time
  token}/`` returns). Our ``token`` is those credentials as one secret, ``username:password``,
  kept in ``CODABOX_TOKEN``; the vendor key is ``software_company`` or ``CODABOX_SOFTWARE_COMPANY``.

Calls::

    GET /v2/delivery/pod-client/          {"id", "fetch_delay", "allowed_formats": {model: [fmt]},
                                           "feed_clients": [{"id": feed id, "client_id",
                                           "client_name", "client_code", "fiduciary_id", ...}]}
    GET /v2/clients/                      [{"id", "client_code", "legal_entity":
                                           {"name", "enterprise_num": "BE0477472701"}, ...}]
    GET /v2/delivery/feed/{feed id}/      {"id", "type": "download", "feed_entries":
                                           [{"feed_index": uuid, "document_model": "coda" |
                                           "soda" | "purchase_invoice" | ..., "metadata": {...}}]}
    GET /v2/delivery/download/{feed_index}/{cod|xml|pdf}/   the file itself
    PUT /v2/delivery/feed/{feed id}/      {"feed_offset": feed_index}: everything up to and
                                           including that entry leaves the feed

Errors are Django REST framework style ``{"detail": ...}``.

What we had to assume
=====================

* Feed paging: public clients read one reply per feed and page by acknowledging, which
  would acknowledge before loading. We send ``limit`` and ``after`` (the last ``feed_index``
  seen) and read ``has_more``; a server that ignores them returns everything at once and
  ``has_more`` is then absent, which ends the loop just the same.
* ``pod-client`` and ``clients`` answer in one reply (no paging seen in any client).
* ``created_at`` (ISO 8601) on a feed entry becomes ``received_at``; without it the column is null.
* The client's VAT number is ``legal_entity.enterprise_num`` in ``/v2/clients/``, matched on
  its digits (``BE 0477.472.701`` = ``0477472701``).
* The file name comes from ``Content-Disposition``; else ``<feed_index>.<format>``.
* Rate limiting and outages: 429 with ``Retry-After`` (seconds or an HTTP date), 5xx; both
  are retried with back-off. 401 means the credentials are wrong, expired or revoked; 403
  a missing or unknown ``X-Software-Company``.
* Formats downloaded: CODA as ``cod`` (the 128-column text the CODA parser reads), SODA as
  ``xml``, purchase invoices as ``xml`` (UBL; ``invoice_format="pdf"`` for the PDF), other
  models in the first format ``allowed_formats`` lists. Nothing the feed offers is skipped,
  since acknowledging moves an offset past everything before it.

Incremental and exactly once
============================

The feed is the cursor: what was acknowledged is gone from it. The source never
acknowledges; it remembers in dlt state (committed with the load) the documents it loaded
that are still in the feed and does not download them again. ``load_codabox`` runs the
pipeline and acknowledges only after ``pipeline.run`` succeeded. A crash between the two
leaves the documents in the feed: the next run downloads nothing for them, acknowledges
them, and even without the state the ``merge`` on ``id`` would make a second copy a no-op.

Tables: ``document`` (one row per delivered file, content as bytes; CODA stays raw for
``sources.bank_files``) and ``soda_line`` (the parsed payroll journal; money DECIMAL(18,2)).
A SODA file that cannot be parsed is still loaded, with the reason in ``parse_error``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from sources import http_audit
from sources.codabox.soda import SodaError, soda_journal_lines

ENV_TOKEN = "CODABOX_TOKEN"
ENV_SOFTWARE_COMPANY = "CODABOX_SOFTWARE_COMPANY"
SOURCE_NAME = "codabox"
TYPES = {"coda": "coda", "soda": "soda", "purchase_invoice": "invoice"}
MAX_WAIT_SECONDS = 120.0  # a Retry-After beyond this is not worth holding a run for

DOCUMENT_COLUMNS: dict[str, dict] = {
    "id": {"data_type": "text", "nullable": False},
    "feed_id": {"data_type": "bigint"},
    "client_id": {"data_type": "text"},
    "client_vat": {"data_type": "text"},
    "client_name": {"data_type": "text"},
    "type": {"data_type": "text"},
    "document_model": {"data_type": "text"},
    "format": {"data_type": "text"},
    "file_name": {"data_type": "text"},
    "sha256": {"data_type": "text"},
    "size": {"data_type": "bigint"},
    "received_at": {"data_type": "timestamp", "timezone": True},
    "metadata": {"data_type": "text"},
    "parse_error": {"data_type": "text"},
    "content": {"data_type": "binary"},
}
SODA_LINE_COLUMNS: dict[str, dict] = {
    "document_id": {"data_type": "text", "nullable": False},
    "reference": {"data_type": "text", "nullable": False},
    "line_no": {"data_type": "bigint", "nullable": False},
    "client_vat": {"data_type": "text"},
    "source": {"data_type": "text"},
    "seq_number": {"data_type": "text"},
    "enterprise_number": {"data_type": "text"},
    "account_period": {"data_type": "text"},
    "business_date": {"data_type": "date"},
    "account": {"data_type": "text"},
    "description": {"data_type": "text"},
    # Without these hints dlt stores DECIMAL(38,9); one dict each, since dlt writes into them.
    "debit": {"data_type": "decimal", "precision": 18, "scale": 2},
    "credit": {"data_type": "decimal", "precision": 18, "scale": 2},
    "currency": {"data_type": "text"},
    "department": {"data_type": "text"},
    "social_period": {"data_type": "text"},
}


class CodaboxError(RuntimeError):
    """CodaBox could not be read or written; the message says which call and why."""


class CodaboxAuthError(CodaboxError):
    """CodaBox refused our credentials or our software-company key."""


# --- HTTP ------------------------------------------------------------------------------------

def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return re.sub(r"\s+", " ", response.text).strip()[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return json.dumps(body)[:200]


def auth_headers(token: str, software_company: str | None) -> dict[str, str]:
    """The headers every CodaBox call carries; refuses settings that cannot work, before any call."""
    username, colon, password = (token or "").partition(":")
    if not colon or not username or not password:
        raise CodaboxAuthError(f"the CodaBox token must be the accounting office's API credentials as "
                               f"'username:password' (set {ENV_TOKEN}); got something else")
    software_company = software_company or os.environ.get(ENV_SOFTWARE_COMPANY)
    if not software_company:
        raise CodaboxAuthError(f"no CodaBox software-company key: pass software_company or set {ENV_SOFTWARE_COMPANY}")
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"X-Software-Company": software_company, "Authorization": f"Basic {basic}", "Accept": "application/json"}


class CodaboxClient:
    """A thin client: auth headers, retries with back-off, the audit log, and nothing else."""

    def __init__(self, base_url: str, token: str, *, software_company: str | None = None,
                 session: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
                 max_attempts: int = 5, backoff_seconds: float = 0.5) -> None:  # not money: seconds
        self.base_url = base_url.rstrip("/")
        self._headers = auth_headers(token, software_company)
        self._http = session or httpx.Client(timeout=60)
        self._own_session = session is None
        self._sleep, self._max_attempts, self._backoff = sleep, max_attempts, backoff_seconds

    def close(self) -> None:
        if self._own_session:
            self._http.close()

    def __enter__(self) -> CodaboxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _audit(self, method: str, url: str, body: bytes | None, status: int | None, started: float) -> None:
        # The vendor key is not named like a secret, so the audit log would print it.
        shown = {**self._headers, "X-Software-Company": "***"}
        http_audit.record(method, url, shown, body, status, (time.perf_counter() - started) * 1000)

    def request(self, method: str, path: str, *, params: dict | None = None,
                body: dict | None = None) -> httpx.Response:
        url = self.base_url + path
        content = json.dumps(body).encode() if body is not None else None
        headers = {**self._headers, **({"Content-Type": "application/json"} if content else {})}
        where = f"CodaBox {method} {path}"
        for attempt in range(1, self._max_attempts + 1):
            backoff = self._backoff * 2 ** (attempt - 1)
            started = time.perf_counter()
            try:
                response = self._http.request(method, url, params=params, content=content, headers=headers)
            except httpx.TransportError as exc:
                self._audit(method, url, content, None, started)
                if attempt == self._max_attempts:
                    raise CodaboxError(f"{where}: no answer after {attempt} attempts "
                                       f"({type(exc).__name__}: {exc})") from exc
                self._sleep(backoff)
                continue
            self._audit(method, str(response.request.url), content, response.status_code, started)
            status = response.status_code
            if status < 300:
                return response
            detail = _detail(response)
            if status == 401:
                raise CodaboxAuthError(f"{where}: HTTP 401 ({detail}): the CodaBox credentials in {ENV_TOKEN} are "
                                       f"invalid or expired; get new ones for the accounting office in MyCodaBox")
            if status == 403:
                raise CodaboxAuthError(f"{where}: HTTP 403 ({detail}): check the software-company key "
                                       f"({ENV_SOFTWARE_COMPANY}) and the office's access to this resource")
            if status != 429 and status < 500:
                raise CodaboxError(f"{where}: HTTP {status}: {detail}")
            if attempt == self._max_attempts:
                raise CodaboxError(f"{where}: HTTP {status} ({detail}) {attempt} times; giving up")
            wait = http_audit.retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
            wait = backoff if wait is None else wait
            if wait > MAX_WAIT_SECONDS:
                raise CodaboxError(f"{where}: HTTP {status}, asked to wait {wait:.0f} s (more than "
                                   f"{MAX_WAIT_SECONDS:.0f} s); try again later")
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, params: dict | None = None) -> object:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise CodaboxError(f"CodaBox GET {path}: the reply is not JSON: {response.text[:200]!r}") from None

    def feed_entries(self, feed_id: int, page_size: int = 100) -> Iterator[dict]:
        """Every entry still in a feed, oldest first, page by page (without acknowledging)."""
        after: str | None = None
        while True:
            params: dict = {"limit": page_size, **({"after": after} if after else {})}
            page = self.get_json(f"/delivery/feed/{feed_id}/", params)
            entries = page.get("feed_entries") if isinstance(page, dict) else None
            if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("feed_index")
                                                        for e in entries):
                raise CodaboxError(f"CodaBox GET /delivery/feed/{feed_id}/: expected feed_entries with a "
                                   f"feed_index each, got {json.dumps(page)[:200]}")
            yield from entries
            if not entries or not page.get("has_more"):
                return
            after = str(entries[-1]["feed_index"])

    def download(self, feed_index: str, file_format: str) -> tuple[bytes, str | None]:
        response = self.request("GET", f"/delivery/download/{feed_index}/{file_format}/")
        match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', response.headers.get("Content-Disposition", ""))
        return response.content, (match.group(1).strip() if match else None)

    def set_feed_offset(self, feed_id: int, feed_index: str) -> None:
        self.request("PUT", f"/delivery/feed/{feed_id}/", body={"feed_offset": feed_index})


# --- feeds and documents ---------------------------------------------------------------------

def vat_digits(vat: str | None) -> str:
    """``BE 0477.472.701``, ``0477472701`` and ``477472701`` all give ``477472701``."""
    return re.sub(r"\D", "", vat or "").lstrip("0")


@dataclass(frozen=True)
class Feed:
    feed_id: int
    client_id: str | None
    client_name: str | None
    client_vat: str | None


def _pod(api: CodaboxClient) -> dict:
    pod = api.get_json("/delivery/pod-client/")
    if not isinstance(pod, dict) or not isinstance(pod.get("feed_clients"), list) \
            or not all(isinstance(f, dict) and isinstance(f.get("id"), int) for f in pod["feed_clients"]):
        raise CodaboxError(f"CodaBox GET /delivery/pod-client/: expected feed_clients with an id each, "
                           f"got {json.dumps(pod)[:200]}")
    return pod


def _office(api: CodaboxClient, vat_number: str | None) -> tuple[dict, list[Feed]]:
    """The formats CodaBox offers per model, and the feeds to read (one per client)."""
    pod = _pod(api)
    clients = api.get_json("/clients/")
    vats = {c.get("id"): (c.get("legal_entity") or {}).get("enterprise_num")
            for c in (clients if isinstance(clients, list) else []) if isinstance(c, dict)}
    feeds = [Feed(int(f["id"]), f.get("client_id"), f.get("client_name"), vats.get(f.get("client_id")))
             for f in pod["feed_clients"]]
    if vat_number is not None:
        wanted = vat_digits(vat_number)
        chosen = [f for f in feeds if wanted and vat_digits(f.client_vat) == wanted]
        if not chosen:
            known = ", ".join(sorted(str(f.client_vat) for f in feeds)) or "none"
            raise CodaboxError(f"no client with VAT number {vat_number!r} among this accounting office's "
                               f"{len(feeds)} CodaBox clients (theirs: {known})")
        feeds = chosen
    return pod.get("allowed_formats") or {}, feeds


def _format_for(model: str, allowed: dict, invoice_format: str) -> str:
    wanted = {"coda": "cod", "soda": "xml", "purchase_invoice": invoice_format}.get(model)
    offered = allowed.get(model) or []
    if wanted and (not offered or wanted in offered):
        return wanted
    if offered:
        return offered[0]
    return wanted or "pdf"


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


@dataclass
class CodaboxReport:
    """What one extraction did besides yielding rows."""

    downloaded: list[str] = field(default_factory=list)
    already_loaded: list[str] = field(default_factory=list)  # in the feed, loaded before, not yet acknowledged
    parse_errors: dict[str, str] = field(default_factory=dict)


def _soda_lines(row: dict) -> tuple[list[dict], str | None]:
    """The journal lines of a SODA document row, or why there are none."""
    try:
        lines = soda_journal_lines(row["content"], row["file_name"])
    except SodaError as exc:
        return [], str(exc)
    for line in lines:
        found = vat_digits(line["enterprise_number"])
        if found and row["client_vat"] and found != vat_digits(row["client_vat"]):
            return [], (f"{row['file_name']}: <EntNum> {line['enterprise_number']!r} is not the VAT number of "
                        f"client {row['client_name']} ({row['client_vat']})")
    return [{"document_id": row["id"], "client_vat": row["client_vat"], **line} for line in lines], None


def _document(api: CodaboxClient, feed: Feed, entry: dict, allowed: dict, invoice_format: str) -> dict:
    index, model = str(entry["feed_index"]), str(entry.get("document_model") or "unknown")
    file_format = _format_for(model, allowed, invoice_format)
    content, file_name = api.download(index, file_format)
    row = {
        "id": index, "feed_id": feed.feed_id, "client_id": feed.client_id, "client_vat": feed.client_vat,
        "client_name": feed.client_name, "type": TYPES.get(model, model), "document_model": model,
        "format": file_format, "file_name": file_name or f"{index}.{file_format}",
        "sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
        "received_at": _instant(entry.get("created_at")),
        "metadata": json.dumps(entry.get("metadata"), sort_keys=True, ensure_ascii=False),
        "parse_error": None, "content": content,
    }
    if model == "soda":
        row["parse_error"] = _soda_lines(row)[1]
    return row


def codabox_source(base_url: str, token: str, *, vat_number: str | None = None, session: httpx.Client | None = None,
                   software_company: str | None = None, page_size: int = 100, invoice_format: str = "xml",
                   sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5,
                   report: CodaboxReport | None = None):
    """The dlt source: every document in the feeds of the office's clients (or of the client with
    ``vat_number``) not loaded before. It never acknowledges; see :func:`load_codabox`."""
    import dlt

    report = report if report is not None else CodaboxReport()
    auth_headers(token, software_company)  # refuse settings that cannot work now, not mid-pipeline

    @dlt.resource(name="document", write_disposition="merge", primary_key="id", columns=copy.deepcopy(DOCUMENT_COLUMNS),
                  max_table_nesting=0)
    def documents():
        loaded: dict[str, list[str]] = dlt.current.resource_state().setdefault("loaded", {})
        with CodaboxClient(base_url, token, software_company=software_company, session=session, sleep=sleep,
                           max_attempts=max_attempts) as api:
            allowed, feeds = _office(api, vat_number)
            for feed in feeds:
                known = set(loaded.get(str(feed.feed_id), []))
                still_loaded: list[str] = []
                for entry in api.feed_entries(feed.feed_id, page_size):
                    index = str(entry["feed_index"])
                    if index in known:
                        report.already_loaded.append(index)
                    else:
                        row = _document(api, feed, entry, allowed, invoice_format)
                        if row["parse_error"]:
                            report.parse_errors[index] = row["parse_error"]
                        report.downloaded.append(index)
                        yield row
                    still_loaded.append(index)
                # What left the feed was acknowledged: only the rest needs remembering.
                loaded[str(feed.feed_id)] = still_loaded
                if not still_loaded:
                    del loaded[str(feed.feed_id)]

    @dlt.transformer(name="soda_line", data_from=documents, write_disposition="merge",
                     primary_key=["document_id", "reference", "line_no"],
                     columns=copy.deepcopy(SODA_LINE_COLUMNS))
    def soda_lines(row: dict):
        if row["document_model"] == "soda" and not row["parse_error"]:
            yield _soda_lines(row)[0]  # parsed again: cheaper than smuggling lines past the document table

    return dlt.source(name=SOURCE_NAME, max_table_nesting=0)(lambda: [documents, soda_lines])()


# --- acknowledging ---------------------------------------------------------------------------

def acknowledge(base_url: str, token: str, ids: Iterable[str], session: httpx.Client | None = None, *,
                software_company: str | None = None, feed_ids: Iterable[int] | None = None,
                sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5) -> list[str]:
    """Take documents out of their feeds; returns the ids acknowledged.

    CodaBox acknowledges by offset: ``feed_offset`` removes that entry *and every one before
    it*. So per feed we move the offset to the end of the longest run, from the head of the
    feed, of documents that are in ``ids`` — a document not in ``ids`` (not loaded) stops it
    and stays in the feed with everything after it. ``feed_ids`` limits the feeds read.
    """
    wanted = set(ids)
    done: list[str] = []
    if not wanted:
        return done
    with CodaboxClient(base_url, token, software_company=software_company, session=session, sleep=sleep,
                       max_attempts=max_attempts) as api:
        feeds = [int(f) for f in feed_ids] if feed_ids is not None else [f["id"] for f in _pod(api)["feed_clients"]]
        for feed_id in feeds:
            head: list[str] = []
            for entry in api.feed_entries(feed_id):
                if str(entry["feed_index"]) not in wanted:
                    break
                head.append(str(entry["feed_index"]))
            if head:
                api.set_feed_offset(feed_id, head[-1])
                done += head
    return done


@dataclass(frozen=True)
class CodaboxLoad:
    load_ids: list[str]
    downloaded: list[str]  # fetched and loaded by this run
    acknowledged: list[str]  # taken out of the feeds after the load (this run's and earlier runs')
    not_acknowledged: list[str]  # loaded, still in a feed behind a document that is not loaded
    parse_errors: dict[str, str]


def loaded_not_acknowledged(pipeline) -> dict[str, list[str]]:
    """feed id -> documents the pipeline loaded that were still in that feed when it last looked."""
    resources = pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
    return {feed: list(ids) for feed, ids in resources.get("document", {}).get("loaded", {}).items()}


def _codabox_cause(exc: BaseException) -> CodaboxError | None:
    """Our own error under dlt's wrappers (PipelineStepFailed > ResourceExtractionError > ...)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, CodaboxError):
            return cause
        seen.add(id(cause))
        cause = getattr(cause, "exception", None) or cause.__cause__ or cause.__context__
    return None


def load_codabox(pipeline, base_url: str, token: str, *, vat_number: str | None = None,
                 session: httpx.Client | None = None, software_company: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5, **options) -> CodaboxLoad:
    """Run the pipeline, then acknowledge what it loaded — never before ``pipeline.run`` succeeded.

    If the run fails nothing is acknowledged and CodaBox delivers the same documents again. If
    acknowledging fails the documents are loaded, dlt state remembers them, and the next run
    acknowledges them without downloading them again.
    """
    report = CodaboxReport()
    source = codabox_source(base_url, token, vat_number=vat_number, session=session,
                            software_company=software_company, sleep=sleep, max_attempts=max_attempts,
                            report=report, **options)
    load_ids: list[str] = []
    if pipeline.has_pending_data:
        # An earlier run died after extracting: load what it left, else run() would load only that.
        pipeline.normalize()
        load_ids += list(pipeline.load().loads_ids)
    try:
        info = pipeline.run(source)
    except Exception as exc:
        cause = _codabox_cause(exc)
        if cause is None:
            raise
        raise cause from exc
    load_ids += list(info.loads_ids)
    loaded = loaded_not_acknowledged(pipeline)
    pending = [index for ids in loaded.values() for index in ids]
    try:
        acknowledged = acknowledge(base_url, token, pending, session, software_company=software_company,
                                   feed_ids=[int(f) for f in loaded], sleep=sleep, max_attempts=max_attempts)
    except CodaboxError as exc:
        raise CodaboxError(f"{len(pending)} CodaBox document(s) are loaded but could not be acknowledged ({exc}); "
                           f"the next run acknowledges them without downloading them again") from exc
    return CodaboxLoad(load_ids=load_ids, downloaded=list(report.downloaded), acknowledged=acknowledged,
                       not_acknowledged=[i for i in pending if i not in set(acknowledged)],
                       parse_errors=dict(report.parse_errors))
