"""The demo PMS as an HTTP API on 127.0.0.1.

    GET /api/v1/charges   GET /api/v1/payments
        updated_since=ISO   records whose current version changed at or after this instant
        posted_from=ISO     records posted at or after ...
        posted_to=ISO       ... and before this instant
        limit=N             page size (1..5000, default 1000)
        cursor=TOKEN        from the previous page's ``next_cursor``
    -> {"data": [...], "next_cursor": "..." | null}

Pages are ordered by (updated_at, id) and the cursor is a key, not an offset, so
records changing between two pages are neither skipped nor repeated.

The server has a clock: it shows each record as it was at that instant (a
version exists from its ``updated_at`` on). ``ledgerflow demo`` moves the clock one
hotel day at a time so that late corrections appear when they would in real life;
tests use the store to inject records a real PMS might send.
"""

from __future__ import annotations

import base64
import bisect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sources.demo_pms.generator import HotelSpec, generate, versions
from sources.local_server import LocalServer

UTC = ZoneInfo("UTC")
RESOURCES = ("charges", "payments")
MAX_LIMIT = 5000


def _parse_instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


@dataclass(frozen=True)
class _Version:
    visible_from: datetime
    record_id: str
    posted_at: datetime | None
    record: dict


class PmsStore:
    """Every version of every record; what the API shows depends on the clock."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._versions: dict[str, list[_Version]] = {name: [] for name in RESOURCES}
        self._sorted = True
        self._cache: dict[tuple[str, datetime], tuple[list[tuple], list[_Version]]] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # Fault injection for tests: more bodies served right after a record's current version,
        # as PMSs with offset paging repeat records, or send two bodies for one version.
        self.also_deliver: dict[str, list[dict]] = {}

    @classmethod
    def from_spec(cls, spec: HotelSpec, clock: Callable[[], datetime] | None = None) -> PmsStore:
        store = cls(clock)
        charges, payments = generate(spec)
        store.add_many("charges", (v for r in charges for v in versions(r)))
        store.add_many("payments", (v for r in payments for v in versions(r)))
        return store

    def set_clock(self, moment: datetime) -> None:
        self.clock = lambda: moment

    def add(self, resource: str, record: dict, visible_from: datetime | None = None) -> None:
        """Add one version. Malformed records are allowed (tests send what real PMSs send);
        they then need ``visible_from`` since their ``updated_at`` may not be a time."""
        self.add_many(resource, [record], visible_from)

    def add_many(self, resource: str, records: Iterable[dict], visible_from: datetime | None = None) -> None:
        with self._lock:
            target = self._versions[resource]
            for record in records:
                shown = visible_from or _parse_instant(record.get("updated_at"))
                if shown is None:
                    raise ValueError(f"record {record.get('id')!r}: give visible_from, updated_at is not a time")
                posted = _parse_instant(record.get("posted_at")) if isinstance(record.get("posted_at"), str) else None
                target.append(_Version(shown, str(record.get("id")), posted, dict(record)))
            self._sorted = False
            self._cache.clear()

    def current(self, resource: str, clock: datetime) -> tuple[list[tuple], list[_Version]]:
        """The current version of each record at ``clock``, ordered by (visible_from, id)."""
        with self._lock:
            if not self._sorted:
                for name in RESOURCES:
                    self._versions[name].sort(key=lambda v: v.visible_from)
                self._sorted = True
            cached = self._cache.get((resource, clock))
            if cached is None:
                latest: dict[str, _Version] = {}
                for version in self._versions[resource]:
                    if version.visible_from > clock:
                        break
                    latest[version.record_id] = version
                rows = sorted(latest.values(), key=lambda v: (v.visible_from, v.record_id))
                cached = ([(v.visible_from, v.record_id) for v in rows], rows)
                if len(self._cache) > 16:
                    self._cache.clear()
                self._cache[(resource, clock)] = cached
            return cached


def _encode_cursor(version: _Version) -> str:
    text = f"{version.visible_from.isoformat()}|{version.record_id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_cursor(token: str) -> tuple[datetime, str]:
    moment, record_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
    return datetime.fromisoformat(moment), record_id


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def create_app(store: PmsStore) -> Starlette:
    async def listing(request: Request) -> JSONResponse:
        resource = request.path_params["resource"]
        if resource not in RESOURCES:
            return JSONResponse({"error": f"unknown resource {resource!r}"}, status_code=404)
        params = request.query_params
        bounds = {}
        for name in ("updated_since", "posted_from", "posted_to"):
            value = params.get(name)
            bounds[name] = _parse_instant(value) if value else None
            if value and bounds[name] is None:
                return _bad_request(f"{name}={value!r} is not an ISO 8601 time with a UTC offset")
        try:
            limit = int(params.get("limit", 1000))
        except ValueError:
            return _bad_request(f"limit={params.get('limit')!r} is not a number")
        if not 1 <= limit <= MAX_LIMIT:
            return _bad_request(f"limit must be between 1 and {MAX_LIMIT}")

        keys, rows = store.current(resource, store.clock())
        start = 0
        if params.get("cursor"):
            try:
                start = bisect.bisect_right(keys, _decode_cursor(params["cursor"]))
            except (ValueError, UnicodeDecodeError):
                return _bad_request("cursor is not one this server issued")
        elif bounds["updated_since"]:
            start = bisect.bisect_left(keys, (bounds["updated_since"], ""))
        page: list[_Version] = []
        index = start
        while index < len(rows) and len(page) < limit:
            version = rows[index]
            index += 1
            if bounds["posted_from"] and (version.posted_at is None or version.posted_at < bounds["posted_from"]):
                continue
            if bounds["posted_to"] and (version.posted_at is None or version.posted_at >= bounds["posted_to"]):
                continue
            page.append(version)
            page.extend(replace(version, record=body) for body in store.also_deliver.get(version.record_id, []))
        # The cursor is the last record *scanned* (kept or filtered out), so the next
        # page goes on from there.
        more = index < len(rows)
        return JSONResponse({
            "data": [version.record for version in page],
            "next_cursor": _encode_cursor(rows[index - 1]) if more else None,
        })

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "clock": store.clock().isoformat()})

    return Starlette(routes=[
        Route("/api/v1/health", health),
        Route("/api/v1/{resource}", listing),
    ])


class DemoPmsServer(LocalServer):
    """Serves a store on 127.0.0.1 from a background thread; use as a context manager."""

    name = "demo PMS"
    root = "/api/v1"

    def __init__(self, store: PmsStore, port: int = 0) -> None:
        self.store = store
        super().__init__(create_app(store), port)
