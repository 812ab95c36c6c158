"""The export ledger over HTTP, for systems that pull a tenant's journal entries themselves.

    GET  /v1/systems/{system_id}/entries?status=pending&not_exported_since=ISO&cursor=C&limit=N
         -> {"entries": [...], "next_cursor": C | null}
    POST /v1/systems/{system_id}/entries/mark   {"ids": [...], "note": "..."}
         -> {"results": [{"id": ..., "status": "marked" | "already_marked" | "unknown"}], "marked": n, ...}

Without ``not_exported_since`` the listing is ``entries_api.pending``, with it ``entries_api.since``.
Money is a decimal string (``"909.10"``), never a float. One app serves one tenant (one DuckDB file).

Auth: every request carries ``Authorization: Bearer <token>``. The operator configures, per
system, the *name* of an environment variable holding the hex SHA-256 of that system's token
(``printf %s "$TOKEN" | sha256sum``), so neither the tenant file nor the server's environment
holds a token that works. A missing or unknown token is a 401; a token of another configured
system is a 403: a system can neither read nor mark another system's entries. Bearer tokens
travel in clear text: behind anything but 127.0.0.1, put a TLS-terminating proxy in front.

The tenant's DuckDB file is opened per request, so closes (another process) can write it between
requests; one lock serialises requests here, because DuckDB allows one writer per file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from destinations import entries_api
from schemas.tenant import ConfigError, Tenant
from sources.local_server import LocalServer
from warehouse.db import opened

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LIST_PARAMETERS = ("status", "not_exported_since", "cursor", "limit")


@dataclass(frozen=True)
class SystemTokens:
    """system_id -> SHA-256 digest of the bearer token that system presents."""

    digests: dict[str, bytes]

    @classmethod
    def from_env(cls, variables: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> SystemTokens:
        """Read each system's token hash from the environment variable named for it; fail at start-up,
        naming the variable, rather than refusing every request later."""
        if not variables:
            raise ConfigError("entries API: no system configured (system_id -> variable holding its token's SHA-256)")
        digests = {}
        for system_id, variable in variables.items():
            value = environ.get(variable, "").strip().lower()
            if not _SHA256_HEX.fullmatch(value):
                problem = "is not set" if variable not in environ else "is not a hex SHA-256 (64 characters 0-9a-f)"
                raise ConfigError(f"entries API: system {system_id!r}: environment variable {variable} {problem}")
            digests[system_id] = bytes.fromhex(value)
        return cls(digests)

    def systems_of(self, token: str) -> set[str]:
        """Every configured system whose hash the token matches, comparing each in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        return {system for system, expected in self.digests.items() if hmac.compare_digest(digest, expected)}


def create_app(tenant: Tenant, tokens: SystemTokens,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Starlette:
    lock = threading.Lock()

    def on_books(work: Callable[[duckdb.DuckDBPyConnection], Response]) -> Response:
        path = tenant.duckdb_path()
        if not path.is_file():
            return _error(503, f"tenant {tenant.id} has no books yet ({path}): no day has been closed")
        try:
            with lock, opened(path) as con:
                return work(con)
        except duckdb.IOException as exc:  # a close in another process holds the file
            return _error(503, f"the books of tenant {tenant.id} are busy: {exc}", {"Retry-After": "5"})

    def list_entries(request: Request) -> Response:  # plain def: Starlette runs it in its thread pool
        system_id = request.path_params["system_id"]
        if refused := _authorise(request, tokens, system_id):
            return refused
        try:
            query = _list_query(request)
        except entries_api.EntriesRequestError as exc:
            return _error(400, str(exc))
        return on_books(lambda con: _listed(con, tenant.id, system_id, **query))

    def mark_entries(request: Request, raw: bytes) -> Response:
        system_id = request.path_params["system_id"]
        if refused := _authorise(request, tokens, system_id):
            return refused
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}")
        return on_books(lambda con: _marked(con, tenant.id, system_id, body, clock()))

    async def read_body_then_mark(request: Request) -> Response:
        return await run_in_threadpool(mark_entries, request, await request.body())

    return Starlette(routes=[
        Route("/v1/systems/{system_id}/entries", list_entries, methods=["GET"]),
        Route("/v1/systems/{system_id}/entries/mark", read_body_then_mark, methods=["POST"]),
    ])


def serve(tenant: Tenant, tokens: SystemTokens, port: int = 0) -> LocalServer:
    """The app on 127.0.0.1 from a background thread; use as a context manager (tests, demos)."""
    server = LocalServer(create_app(tenant, tokens), port)
    server.name = f"entries API of {tenant.id}"
    return server


def _authorise(request: Request, tokens: SystemTokens, system_id: str) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    systems = tokens.systems_of(token.strip()) if scheme.lower() == "bearer" and token.strip() else set()
    if not systems:
        return _error(401, "missing or unknown bearer token (Authorization: Bearer <token>)",
                      {"WWW-Authenticate": 'Bearer realm="ledgerflow"'})
    if system_id not in systems:
        return _error(403, f"this token is not one of system {system_id!r}: a system reads and marks only "
                           "its own entries")
    return None


def _list_query(request: Request) -> dict:
    """The listing's parameters, or an EntriesRequestError naming the one that is wrong."""
    params = request.query_params
    if unknown := sorted(set(params) - set(_LIST_PARAMETERS)):
        raise entries_api.EntriesRequestError(f"unknown query parameter {unknown[0]!r}; "
                                              f"known: {', '.join(_LIST_PARAMETERS)}")
    if params.get("status", "pending") != "pending":
        raise entries_api.EntriesRequestError(f"status {params['status']!r}: only 'pending' is offered")
    since = params.get("not_exported_since")
    try:
        limit = int(params.get("limit", entries_api.DEFAULT_LIMIT))
    except ValueError:
        raise entries_api.EntriesRequestError(f"limit {params['limit']!r}: expected a whole number") from None
    return {"since": _instant(since) if since else None, "cursor": params.get("cursor"), "limit": limit}


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise entries_api.EntriesRequestError(f"not_exported_since {text!r}: expected an ISO 8601 instant "
                                              "with offset, e.g. 2026-03-11T10:00:00Z") from None


def _listed(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, *, since: datetime | None,
            cursor: str | None, limit: int) -> Response:
    try:
        if since is None:
            page = entries_api.pending(con, tenant_id, system_id, limit=limit, after=cursor)
        else:
            page = entries_api.since(con, tenant_id, system_id, since, limit=limit, after=cursor)
    except entries_api.EntriesRequestError as exc:
        return _error(400, str(exc))
    return _json(200, {"entries": page.entries, "next_cursor": page.next_cursor})


def _marked(con: duckdb.DuckDBPyConnection, tenant_id: str, system_id: str, body: object,
            now: datetime) -> Response:
    if not isinstance(body, dict) or not isinstance(body.get("note", ""), (str, type(None))):
        return _error(422, 'body: expected {"ids": ["<entry id>", ...], "note": "<text>"} (note optional)')
    try:
        results = entries_api.mark(con, tenant_id, system_id, body.get("ids"), body.get("note"), now=now,
                                   actor=f"api:{system_id}")
    except entries_api.EntriesRequestError as exc:
        return _error(422, str(exc))
    counts = {status: sum(r.status == status for r in results) for status in ("marked", "already_marked", "unknown")}
    return _json(200, {"results": [{"id": r.id, "status": r.status} for r in results], **counts})


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, default=entries_api.json_value, ensure_ascii=False), status,
                    headers=headers, media_type="application/json")


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return _json(status, {"error": message}, headers)
