"""The paginated fake the extraction benchmark reads: the demo PMS API (``GET /api/v1/charges``,
``limit`` + ``cursor``, ``{"data": [...], "next_cursor": ...}``) serving N charge records.

Records are made from their index on the fly, so a million of them cost no memory and every page
is the same on every run; pages are ordered by ``updated_at`` (one record every 30 s from
2026-01-01) and the cursor is an opaque token for the last record served. ``payments`` exists and
is empty (ledgerflow's demo PMS source reads both resources).

``python -m bench.extract_server N`` serves in its own process -- so that neither its CPU nor its
memory counts against the pipeline being measured -- prints its URL on one line, and stops when
its standard input closes.
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sources.local_server import LocalServer

FIRST = datetime(2026, 1, 1, tzinfo=UTC)
STEP_SECONDS = 30
MAX_LIMIT = 5000
_CATEGORIES = (("ROOM", "ROOMS", "10.00"), ("BREAKFAST", "RESTAURANT", "10.00"), ("FOOD", "RESTAURANT", "10.00"),
               ("BEVERAGE", "BAR", "20.00"), ("SPA", "SPA", "20.00"), ("CITY_TAX", "ROOMS", "0.00"))
_CENTS = ("00", "50", "90", "40", "70")


def charge(index: int) -> dict:
    """Charge number ``index``, shaped like the demo PMS's (money and rates as decimal strings)."""
    category, outlet, rate = _CATEGORIES[index % len(_CATEGORIES)]
    moment = (FIRST + timedelta(seconds=STEP_SECONDS * index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": f"CHG-{index:08d}",
        "folio_id": f"F{index // 8:07d}",
        "reservation_id": None if index % 7 == 0 else f"R{index // 16:07d}",
        "outlet": outlet,
        "category": category,
        "description": f"{category.title()} {index % 97}",
        "quantity": 1 + index % 3,
        "amount": f"{(index * 7919) % 400 + 2}.{_CENTS[index % len(_CENTS)]}",
        "vat_rate": rate,
        "currency": "EUR",
        "status": "posted",
        "posted_at": moment,
        "updated_at": moment,
    }


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"charge:{index}".encode()).decode()


def _after_cursor(token: str) -> int:
    kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    if kind != "charge" or not number.isdigit():
        raise ValueError(token)
    return int(number) + 1


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def create_app(total: int) -> Starlette:
    def first_since(text: str) -> int:
        """Index of the first charge updated at or after ``text`` (an ISO time with an offset)."""
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(text)
        seconds = (moment - FIRST).total_seconds()  # not money
        return max(0, -int(-seconds // STEP_SECONDS))

    async def listing(request: Request) -> Response:
        resource = request.path_params["resource"]
        if resource not in ("charges", "payments"):
            return JSONResponse({"error": f"unknown resource {resource!r}"}, status_code=404)
        params = request.query_params
        try:
            limit = int(params.get("limit", 1000))
        except ValueError:
            return _bad_request(f"limit={params.get('limit')!r} is not a number")
        if not 1 <= limit <= MAX_LIMIT:
            return _bad_request(f"limit must be between 1 and {MAX_LIMIT}")
        start = 0
        if params.get("cursor"):
            try:
                start = _after_cursor(params["cursor"])
            except (ValueError, UnicodeDecodeError):
                return _bad_request("cursor is not one this server issued")
        elif params.get("updated_since"):
            try:
                start = first_since(params["updated_since"])
            except ValueError:
                return _bad_request(f"updated_since={params['updated_since']!r} is not an ISO 8601 time with an offset")
        end = min(start + limit, total) if resource == "charges" else start
        body = {"data": [charge(index) for index in range(start, end)],
                "next_cursor": _cursor(end - 1) if end < total and resource == "charges" else None}
        return Response(orjson.dumps(body), media_type="application/json")

    return Starlette(routes=[Route("/api/v1/{resource}", listing)])


class ChargesServer(LocalServer):
    name = "benchmark PMS"
    root = "/api/v1"

    def __init__(self, total: int, port: int = 0) -> None:
        super().__init__(create_app(total), port)


if __name__ == "__main__":
    with ChargesServer(int(sys.argv[1])) as server:
        print(server.url, flush=True)
        sys.stdin.read()
