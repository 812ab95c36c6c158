"""``ledgerflow exports``: the export ledger for systems that pull journal entries (pending, since,
mark) and the HTTP API that serves it to them (serve). Thin: ``destinations.entries_api`` does the work.

Output is for scripts: JSON lines (one entry or one id per line, money as decimal strings) or a
plain table, never wrapped. Exit 2: the request was refused and nothing was done; exit 1 from
``mark``: some ids are unknown (the others were marked).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn, Optional

import typer

exports_app = typer.Typer(help="Journal entries for systems that pull them: pending, since, mark, serve.",
                          no_args_is_help=True)

EXIT_INPUT = 2  # as in flows.cli: bad input or configuration, the message says where
FORMATS = ("jsonl", "table")

Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id or path to its TOML file.")]
System = Annotated[str, typer.Option("--system", help="The consuming system's id (any name, e.g. erp).")]
Limit = Annotated[int, typer.Option(help="Entries per page (1-500).")]
Cursor = Annotated[Optional[str], typer.Option(help="next_cursor of the previous page.")]
Format = Annotated[str, typer.Option("--format", help="jsonl (one JSON object per line) or table.")]


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_INPUT)


@exports_app.command("pending")
def pending_command(tenant: Tenant, system: System, limit: Limit = 100, cursor: Cursor = None,
                    format: Format = "jsonl") -> None:
    """Entries not yet exported to SYSTEM, with their lines, in the order they were built."""
    from destinations import entries_api

    _check_format(format)
    _print_page(_on_books(tenant, lambda con, tenant_id: entries_api.pending(
        con, tenant_id, system, limit=limit, after=cursor)), format)


@exports_app.command("since")
def since_command(tenant: Tenant, system: System,
                  since: Annotated[str, typer.Option(help="ISO 8601 instant with offset, e.g. 2026-03-11T10:00Z.")],
                  limit: Limit = 100, cursor: Cursor = None, format: Format = "jsonl") -> None:
    """Entries built since an instant that SYSTEM must (re-)export: new days, reversals, corrections."""
    from datetime import datetime

    from destinations import entries_api

    _check_format(format)
    try:
        instant = datetime.fromisoformat(since)
    except ValueError:
        _fail(f"--since {since!r}: expected an ISO 8601 instant with offset, e.g. 2026-03-11T10:00:00Z")
    _print_page(_on_books(tenant, lambda con, tenant_id: entries_api.since(
        con, tenant_id, system, instant, limit=limit, after=cursor)), format)


@exports_app.command("mark")
def mark_command(
    tenant: Tenant, system: System,
    ids: Annotated[list[str], typer.Argument(help="Entry ids, at most 10.")],
    note: Annotated[Optional[str], typer.Option(help="Note for each entry's timeline (e.g. the import run).")]
    = None,
    actor: Annotated[str, typer.Option(help="Who marks (kept in the timeline).")] = os.environ.get("USER", "cli"),
    format: Format = "jsonl",
) -> None:
    """Mark entries as exported to SYSTEM; each id answers marked, already_marked or unknown."""
    import json
    from datetime import UTC, datetime

    from destinations import entries_api

    _check_format(format)
    results = _on_books(tenant, lambda con, tenant_id: entries_api.mark(
        con, tenant_id, system, ids, note, now=datetime.now(UTC), actor=actor))
    for result in results:
        print(json.dumps({"id": result.id, "status": result.status}) if format == "jsonl"
              else f"{result.status:<15} {result.id}")
    if any(result.status == "unknown" for result in results):
        raise typer.Exit(1)


@exports_app.command("serve")
def serve_command(
    tenant: Tenant,
    token_env: Annotated[list[str], typer.Option(
        "--token-env", help="SYSTEM=VARIABLE: the environment variable holding the hex SHA-256 of SYSTEM's "
                            "bearer token (printf %s TOKEN | sha256sum). Repeat per system.")],
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8750,
    host: Annotated[str, typer.Option(help="Address to listen on; put a TLS proxy in front of anything but "
                                           "127.0.0.1.")] = "127.0.0.1",
) -> None:
    """Serve the entries API (GET .../entries, POST .../entries/mark) for one tenant until interrupted."""
    import uvicorn

    from destinations.entries_http import SystemTokens, create_app
    from schemas.tenant import ConfigError, load_tenant

    if bad := [item for item in token_env if "=" not in item or item.startswith("=") or item.endswith("=")]:
        _fail(f"--token-env {bad[0]!r}: expected SYSTEM=VARIABLE")
    variables = dict(item.partition("=")[::2] for item in token_env)
    try:
        app = create_app(load_tenant(tenant), SystemTokens.from_env(variables))
    except ConfigError as exc:
        _fail(str(exc))
    print(f"entries API of {tenant} on http://{host}:{port}/v1/systems/<system_id>/entries", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        _fail(f"--format {format!r}: expected {' or '.join(FORMATS)}")


def _on_books(tenant: str, work):
    """Run ``work(con, tenant_id)`` on the tenant's DuckDB file; refusals exit 2 with the reason."""
    from destinations.entries_api import EntriesRequestError
    from schemas.tenant import ConfigError, load_tenant
    from warehouse.db import opened

    try:
        config = load_tenant(tenant)
        path = config.duckdb_path()
        if not path.is_file():
            _fail(f"tenant {config.id} has no books yet ({path}): close a day first")
        with opened(path) as con:
            return work(con, config.id)
    except (ConfigError, EntriesRequestError) as exc:
        _fail(str(exc))


def _print_page(page, format: str) -> None:
    import json

    from destinations.entries_api import json_value

    if format == "table":
        print(f"{'entry_id':<32} {'entry_date':<10}  {'kind':<10} {'ver':<4} {'lines':>9}  {'debit':>12}  hash")
    for entry in page.entries:
        if format == "jsonl":
            print(json.dumps(entry, default=json_value, ensure_ascii=False))
        else:
            debit = sum(line["debit"] for line in entry["lines"])
            print(f"{entry['entry_id']:<32} {entry['entry_date']}  {entry['kind']:<10} v{entry['version']:<3} "
                  f"{entry['line_count']:>3} lines  {debit:>12}  {entry['content_hash'][:12]}")
    if page.next_cursor:
        print(f"more entries: --cursor {page.next_cursor}", file=sys.stderr)
