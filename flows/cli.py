"""The ``ledgerflow`` command: a thin layer that parses flags, calls the library, and prints.

Heavy libraries (Prefect, dlt, DuckDB, Polars) are imported inside the commands
that need them, so ``ledgerflow --help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from flows.cli_exports import exports_app
from flows.cli_webhooks import webhooks_app

app = typer.Typer(
    name="ledgerflow",
    help="Operational systems (PMS, POS, payments, banks) to balanced journals, reconciliation and "
         "accounting exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenant_app = typer.Typer(help="Check tenant configuration files.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
reconcile_app = typer.Typer(help="Reconcile a tenant's bank lines and open items: run, review, decide.",
                            no_args_is_help=True)
app.add_typer(reconcile_app, name="reconcile")
statements_app = typer.Typer(help="Bank statement files (CODA, camt.053/054, MT940, OFX, bank CSV).",
                             no_args_is_help=True)
app.add_typer(statements_app, name="statements")
app.add_typer(exports_app, name="exports")
app.add_typer(webhooks_app, name="webhooks")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

EXIT_INPUT = 2  # bad input or configuration: the message says where


def _fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _quiet_prefect() -> None:
    """Our own progress on the terminal; Prefect's run logs stay in the Prefect UI."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # failures are printed by _run, once
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=80, help="Hotel days to close, ending 2026-03-31.")] = 7,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the export files [default: WORKDIR/exports].")] = None,
    workdir: Annotated[Path, typer.Option(help="Folder for the DuckDB file, journal and trial balance.")]
    = Path("ledgerflow-demo"),
) -> None:
    """Run the daily close end to end for the embedded demo hotel (no network, no set-up)."""
    _quiet_prefect()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from flows.demo import run_demo

    out = out or workdir / "exports"
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting the demo PMS and Prefect", total=days)

        def advance(day: date) -> None:
            progress.update(task, advance=1, description=f"closed {day}")

        result = run_demo(days, out, workdir, progress=advance)

    table = Table(title="Daily close of Hôtel du Lac (demo)", title_justify="left")
    for column in ("business day", "state", "entries", "lines", "bank lines matched", "late changes published"):
        table.add_column(column)
    for day, state, entries, lines, notes, matched in result.days:
        table.add_row(str(day), state, str(entries), str(lines), str(matched), "\n".join(notes))
    console.print(table)
    console.print(f"Trial balance: debit {result.total_debit} = credit {result.total_credit}\n")
    console.print(f"DuckDB file     {_relative(result.duckdb)}")
    console.print(f"Journal         {_relative(result.journal)}")
    console.print(f"Trial balance   {_relative(result.trial_balance)}")
    console.print(f"Export files    {_relative(result.exports)}/ ({len(result.export_files)} files, with manifests)")
    console.print(f"Reconciliation  {_relative(result.reconciliation)} (review queue: {_relative(result.review)})")
    console.print(f"Tenant file     {_relative(result.tenant_file)}")


@app.command("close")
def close_command(
    tenant: Annotated[str, typer.Argument(help="Tenant id (tenants/<id>.toml) or path to its TOML file.")],
    business_date: Annotated[Optional[str], typer.Option("--date", help="YYYY-MM-DD [default: the last day over].")]
    = None,
) -> None:
    """Run the daily-close flow for one business day, here and now."""
    _quiet_prefect()
    day = _parse_date(business_date, "--date") if business_date else None
    from flows.daily_close import daily_close

    _report(_run(lambda: daily_close(tenant, day, return_state=True)))


@app.command("backfill")
def backfill_command(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    start: Annotated[str, typer.Option(help="First business day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last business day, YYYY-MM-DD (inclusive).")],
    period: Annotated[str, typer.Option(help="day, week or month: how the window is closed and exported.")]
    = "day",
) -> None:
    """Run the backfill flow over a past window, period by period."""
    _quiet_prefect()
    if period not in ("day", "week", "month"):
        _fail(f"--period {period!r}: expected day, week or month")
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    from flows.backfill import backfill

    _report(_run(lambda: backfill(tenant, first, last, period, return_state=True)))


@app.command("reconcile-files")
def reconcile_files_command(
    bank: Annotated[Path, typer.Option(help="BANK.csv: one row per bank statement line.")],
    items: Annotated[Path, typer.Option(help="ITEMS.csv: the open items expected to be settled.")],
    out: Annotated[Path, typer.Option(help="MATCHES.csv to write.")],
    tolerance_days: Annotated[int, typer.Option(
        min=0, max=3660, help="Days a payment may lie before the issue date or after the due date "
                              "(amount + partner matches only).")] = 45,
    amount_tolerance: Annotated[str, typer.Option(
        help="PCT: a difference up to this % of the items' total is written off (reference matches).")] = "3",
    report: Annotated[Optional[Path], typer.Option(help="REPORT.json to write: counts, unmatched, suggestions.")]
    = None,
    decisions: Annotated[Optional[Path], typer.Option(
        help="A reviewer's DECISIONS.csv (bank_line_id,item_id,decision[,amount_applied]) with decision "
             "confirm or reject: confirmed pairs are matched first, rejected pairs never.")] = None,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="YYYY-MM-DD the age of open items is counted to [default: the last booking date].")]
    = None,
) -> None:
    """Match bank lines against open items, offline (INTERFACES §1). Exit 2 on malformed input."""
    from decimal import Decimal, InvalidOperation

    from flows.recon_files import InputError, reconcile_files

    try:
        tolerance = Decimal(amount_tolerance)
        if not (0 <= tolerance <= 100) or tolerance.as_tuple().exponent < -2:
            raise InvalidOperation
    except InvalidOperation:
        _fail(f"--amount-tolerance {amount_tolerance!r}: expected a percentage between 0 and 100")
    day = _parse_date(as_of, "--as-of") if as_of else None
    try:
        result = reconcile_files(bank, items, out, tolerance_days=tolerance_days, amount_tolerance=tolerance,
                                 report=report, decisions=decisions, as_of=day)
    except InputError as exc:
        _fail(str(exc))
    summary = result.report
    console.print(
        f"matched {summary['matched_lines']} of {summary['bank_lines']} bank lines and "
        f"{summary['matched_items']} of {summary['items']} items ({result.matches} rows); "
        f"{len(summary['unmatched_lines'])} lines unmatched, {len(summary['suggestions'])} suggestions to review"
    )
    for rule, count in summary["by_rule"].items():
        console.print(f"  {rule:<18} {count}")


@reconcile_app.command("run")
def reconcile_run(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD ages are counted to [default: today].")]
    = None,
) -> None:
    """Run the reconcile flow now: take the inbox, match, record, book, alert."""
    _quiet_prefect()
    day = _parse_date(as_of, "--as-of") if as_of else None
    from flows.reconcile import reconcile

    state = _run(lambda: reconcile(tenant, "manual", day, return_state=True))
    summary = state.result()
    console.print(f"{state.name}: {state.message or ''}")
    for rule, count in summary.report["by_rule"].items():
        console.print(f"  {rule:<18} {count}")


@reconcile_app.command("drop")
def reconcile_drop(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    file: Annotated[Path, typer.Argument(help="BANK.csv or ITEMS.csv to hand over.")],
    kind: Annotated[str, typer.Option(help="bank (statement lines) or items (open items).")] = "bank",
) -> None:
    """Put a file into the tenant's inbox and emit the event that starts a reconcile run."""
    from flows.events import drop
    from schemas.tenant import ConfigError, load_tenant

    if kind not in ("bank", "items"):
        _fail(f"--kind {kind!r}: expected bank or items")
    if not file.is_file():
        _fail(f"{file}: file not found")
    try:
        config = load_tenant(tenant)
    except ConfigError as exc:
        _fail(str(exc))
    _quiet_prefect()
    target, emitted = drop(config, kind, file)
    console.print(f"{_relative(target)}: in the inbox; "
                  + ("a reconcile run is asked for (one per burst)" if emitted
                     else "no Prefect server reachable: the next scheduled run takes it"))


@reconcile_app.command("review")
def reconcile_review(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    out: Annotated[Path, typer.Option(help="REVIEW.csv to write: fill in `decision` and feed it to `decide`.")],
) -> None:
    """Write the review queue (suggestions and unmatched lines) as a CSV to decide on."""
    from flows.reporting import write_csv
    from schemas.tenant import ConfigError, load_tenant
    from warehouse.db import opened
    from warehouse.recon import review_rows

    try:
        config = load_tenant(tenant)
    except ConfigError as exc:
        _fail(str(exc))
    with opened(config.duckdb_path()) as con:
        rows = review_rows(con)
    write_csv(rows, out)
    console.print(f"{_relative(out)}: {rows.height} rows to review "
                  f"({rows['bank_line_id'].n_unique() if rows.height else 0} bank lines)")


@reconcile_app.command("decide")
def reconcile_decide(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    decisions: Annotated[Path, typer.Argument(help="DECISIONS.csv: bank_line_id,item_id,decision[,amount_applied,"
                                                   "note]; decision is confirm, reject or reverse.")],
    by: Annotated[str, typer.Option(help="Who decided (kept in the match trail).")] = os.environ.get("USER", "reviewer"),
) -> None:
    """Apply a reviewer's decisions: confirmations are booked, rejected pairs are never proposed
    again, a reversal undoes a line's matches. Then rebuild the bank journal."""
    import uuid
    from datetime import UTC, datetime

    from schemas.tenant import ConfigError, load_tenant
    from sources.recon_csv import DECISION_COLUMNS, InputError, read_table
    from warehouse.db import opened
    from warehouse.recon import apply_decisions, store_bank_journal

    try:
        config = load_tenant(tenant)
        frame = read_table(decisions, DECISION_COLUMNS)
    except (ConfigError, InputError) as exc:
        _fail(str(exc))
    if config.reconciliation is None:
        _fail(f"tenant {config.id} has no [reconciliation] table")
    run_id, now = f"decide-{uuid.uuid4()}", datetime.now(UTC)
    with opened(config.duckdb_path()) as con:
        applied = apply_decisions(con, frame, run_id=run_id, now=now, decided_by=by, source=str(decisions))
        store_bank_journal(con, config, run_id=run_id, now=now)
    console.print(f"confirmed {applied.confirmed}, rejected {applied.rejected}, reversed {applied.reversed} rows")
    for problem in applied.problems:
        errors.print(f"not applied: {problem}", markup=False, soft_wrap=True)
    if applied.problems:
        raise typer.Exit(EXIT_INPUT)


@app.command("deliver")
def deliver_command(
    tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")],
    destination: Annotated[str, typer.Argument(help="The destination's name ([destinations.NAME]).")],
    period: Annotated[str, typer.Option(help="YYYY-MM-DD..YYYY-MM-DD: the batches whose period lies inside.")],
    force: Annotated[bool, typer.Option(help="Send again even where this content was delivered already.")] = False,
) -> None:
    """Deliver a destination's published files again by sFTP and e-mail (from its folder, hash-checked).
    Without --force only what has not arrived yet is sent. Exit 1 if a delivery failed."""
    import uuid
    from datetime import UTC, datetime

    from destinations.deliveries import deliver_batches
    from flows.export_files import ExportProblem, parse_period
    from schemas.tenant import ApiDestination, ConfigError, load_tenant
    from warehouse.db import opened, query

    try:
        config = load_tenant(tenant)
        start, end = parse_period(period)
    except (ConfigError, ExportProblem) as exc:
        _fail(str(exc))
    if destination not in config.destinations:
        _fail(f"tenant {config.id} has no destination {destination!r}; it has: {', '.join(config.destinations)}")
    if isinstance(config.destinations[destination], ApiDestination):
        _fail(f"{destination} is an API destination: nothing is delivered as files; `ledgerflow post` posts to it")
    with opened(config.duckdb_path()) as con:
        batches = query(con, "SELECT batch_id FROM export_batch WHERE tenant = ? AND system_id = ? "
                             "AND period_start >= ? AND period_end <= ? ORDER BY period_start, created_at, batch_id",
                        [config.id, destination, start, end])
        ids = batches.get_column("batch_id").to_list() if batches.height else []
        records = deliver_batches(con, config, destination, ids, run_id=f"deliver-{uuid.uuid4()}",
                                  now=datetime.now(UTC), force=force)
    if not ids:
        console.print(f"{destination}: nothing published for {start}..{end}")
    for record in records:
        print(f"{record.status:<8} {record.channel:<6} {record.file_name}  {record.target}"
              + (f"  {record.detail}" if record.status == "failed" else ""))
    if any(record.status == "failed" for record in records):
        raise typer.Exit(1)


@app.command("auth")
def auth_command(
    system: Annotated[str, typer.Argument(help="xero, qbo, or the name of one of the tenant's API destinations.")],
    tenant: Annotated[str, typer.Option(help="Tenant id or path to its TOML file.")],
    redirect_uri: Annotated[str, typer.Option(help="The redirect URI registered with the OAuth app.")]
    = "http://localhost:8765/callback",
    code: Annotated[Optional[str], typer.Option(help="The code the browser came back with (second step).")] = None,
) -> None:
    """Connect an organisation once (OAuth 2.0 authorisation code): without --code, print the URL to
    open; with --code, exchange it and store the tokens in the destination's token store."""
    from destinations.apis.oauth import AuthError, authorization_url
    from flows.post import PostProblem, resolve_destination, session_for
    from schemas.tenant import ConfigError, load_tenant

    try:
        config = load_tenant(tenant)
        destination = resolve_destination(config, system)
    except (ConfigError, PostProblem) as exc:
        _fail(str(exc))
    try:
        module, _, session = session_for(config, destination)
    except (PostProblem, AuthError) as exc:
        _fail(str(exc))
    if code is None:
        url, state = authorization_url(module.AUTHORIZE_URL, client_id=session.client_id, redirect_uri=redirect_uri,
                                       scope=module.SCOPE)
        print(url)
        console.print(f"Open it, allow access, then run this command again with --code (state {state}).")
        return
    try:
        session.exchange_code(code, redirect_uri)
    except AuthError as exc:
        _fail(str(exc))
    print(f"{destination}: connected; tokens stored in {session.store}")


@app.command("post")
def post_command(
    system: Annotated[str, typer.Argument(help="xero, qbo, or the name of one of the tenant's API destinations.")],
    tenant: Annotated[str, typer.Option(help="Tenant id or path to its TOML file.")],
    period: Annotated[str, typer.Option(help="YYYY-MM-DD..YYYY-MM-DD, both days included.")],
    journal: Annotated[Optional[Path], typer.Option(
        help="JOURNAL.csv to post instead of the tenant's ledger (tracked in the tenant's export ledger).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be posted; send nothing.")] = False,
) -> None:
    """Post the period's journal entries to an accounting API (INTERFACES §5). Posting twice posts
    nothing new. Exit 1 if an entry failed (each is named with the API's message)."""
    import uuid

    from flows.export_files import ExportProblem, parse_period
    from flows.post import PostProblem, post_period, posting_stopped, resolve_destination
    from schemas.tenant import ConfigError, load_tenant
    from sources.recon_csv import InputError

    try:
        config = load_tenant(tenant)
        start, end = parse_period(period)
        destination = resolve_destination(config, system)
        summary = post_period(config, destination, start, end, journal_csv=journal, dry_run=dry_run,
                              run_id=f"post-{uuid.uuid4()}")
    except (ConfigError, ExportProblem, PostProblem, InputError) as exc:
        _fail(str(exc))
    except posting_stopped() as exc:
        partial = getattr(exc, "summary", None)
        if partial is not None:
            print(partial.line())
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print(summary.line())
    for outcome in summary.failed:
        errors.print(f"failed {outcome.object_id}: {outcome.message}", markup=False, soft_wrap=True)
    for outcome in summary.waiting:
        errors.print(f"waiting {outcome.object_id}: {outcome.message}", markup=False, soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command("export")
def export_command(
    format: Annotated[str, typer.Argument(
        help="csv, fec, datev, saft-no, xaf, sie4, beancount, hledger, template:<name>, ubl, facturx "
             "(see the README's format table).")],
    out: Annotated[Path, typer.Option(help="Folder the export files are written to.")],
    company: Annotated[Path, typer.Option(help="COMPANY.toml (or a tenant file): legal entity, chart, VAT codes.")],
    period: Annotated[str, typer.Option(help="YYYY-MM-DD..YYYY-MM-DD, both days included.")],
    journal: Annotated[Optional[Path], typer.Option(help="JOURNAL.csv: one row per journal line.")] = None,
    invoices: Annotated[Optional[Path], typer.Option(help="INVOICES.csv for e-invoice formats (ubl, facturx).")]
    = None,
    opening: Annotated[Optional[Path], typer.Option(
        help="OPENING.csv (account,opening_debit,opening_credit) for SAF-T, XAF and SIE.")] = None,
) -> None:
    """Write regional export files from a journal or invoices (INTERFACES §3). Exit 2, nothing written, if
    refused."""
    from flows.export_files import ExportProblem, export_files, export_invoice_files

    if (journal is None) == (invoices is None):
        _fail("give either --journal JOURNAL.csv (ledger formats) or --invoices INVOICES.csv (ubl, facturx)")
    try:
        if invoices is not None:
            paths = export_invoice_files(format, invoices, company, period, out)
        else:
            paths = export_files(format, journal, company, period, out, opening)
    except ExportProblem as exc:
        _fail(str(exc))
    for path in paths:
        print(path)


@statements_app.command("parse")
def statements_parse(
    files: Annotated[list[Path], typer.Argument(help="Statement files to read (never moved or changed).")],
    out: Annotated[Path, typer.Option(help="LINES.csv to write: the BANK.csv columns plus statement columns.")],
    format: Annotated[str, typer.Option(
        "--format", help="auto|coda|camt053|camt054|mt940|ofx|csv (auto looks at the first bytes).")] = "auto",
    profile: Annotated[Optional[str], typer.Option(
        help="Bank CSV profile (required with --format csv): a built-in one or from --tenant's file.")] = None,
    tenant: Annotated[Optional[str], typer.Option(
        help="Tenant id or TOML file whose [bank_csv_profiles] to use with --profile.")] = None,
) -> None:
    """Parse bank statements into LINES.csv (INTERFACES §2). Exit 2 if any file is bad."""
    from flows.statement_files import parse_statements
    from sources.bank_files.formats import FORMAT_NAMES

    if format not in FORMAT_NAMES:
        _fail(f"--format {format!r}: expected one of {', '.join(FORMAT_NAMES)}")
    csv_profile = None
    if format == "csv" or profile:
        if not profile:
            _fail("--format csv needs --profile NAME (ledgerflow statements profiles lists them)")
        csv_profile = _csv_profile(profile, tenant)
    outcome = parse_statements(files, out, format, csv_profile)
    # Plain lines, never wrapped or cut: scripts read them (INTERFACES §2).
    for result in outcome.files:
        for line in result.summaries:
            print(line)
    for gap in outcome.gaps:
        print(f"warning: gap between statements: {gap}", file=sys.stderr)
    for result in outcome.files:
        if result.repeated:
            print(f"note: {result.file}: {result.repeated} lines were already in an earlier file and are written "
                  "once", file=sys.stderr)
    bad = [f for f in outcome.files if f.error]
    for result in bad:
        print(f"error: {result.error}", file=sys.stderr)
    if outcome.written is not None:
        lines = sum(len(f.rows) for f in outcome.files)
        print(f"wrote {lines} lines to {_relative(outcome.written)}", file=sys.stderr)
    if bad:
        if len(outcome.files) > 1:
            print(f"{len(bad)} of {len(outcome.files)} files are bad; their lines were not written", file=sys.stderr)
        raise typer.Exit(EXIT_INPUT)


@statements_app.command("profiles")
def statements_profiles(
    tenant: Annotated[Optional[str], typer.Option(help="Also list the profiles of this tenant's file.")] = None,
) -> None:
    """List the bank CSV profiles: built-in ones and the tenant's."""
    from sources.bank_files.bank_csv import BUILTIN_PROFILES

    profiles = dict(BUILTIN_PROFILES)
    if tenant:
        profiles.update(_tenant_profiles(tenant))
    for name, item in sorted(profiles.items()):
        console.print(f"{name:<24} {item.description}", markup=False, soft_wrap=True)


def _tenant_profiles(tenant: str) -> dict:
    from schemas.tenant import ConfigError, load_tenant

    try:
        return dict(load_tenant(tenant).bank_csv_profiles)
    except ConfigError as exc:
        _fail(str(exc))


def _csv_profile(name: str, tenant: str | None):
    from sources.bank_files.bank_csv import BUILTIN_PROFILES

    profiles = dict(BUILTIN_PROFILES)
    if tenant:
        profiles.update(_tenant_profiles(tenant))
    if name not in profiles:
        where = "built-in" + (f" or in tenant {tenant}" if tenant else " (pass --tenant for a tenant's own)")
        _fail(f"--profile {name!r} is not a bank CSV profile {where}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


@tenant_app.command("check")
def tenant_check(tenant: Annotated[str, typer.Argument(help="Tenant id or path to its TOML file.")]) -> None:
    """Validate a tenant file: keys, accounts, VAT codes and mapping references."""
    from schemas.tenant import ConfigError, load_tenant

    try:
        config = load_tenant(tenant)
    except ConfigError as exc:
        _fail(str(exc))
    console.print(f"{tenant}: ok ({len(config.accounts)} accounts, {len(config.vat_codes)} VAT codes, "
                  f"{len(config.sources)} sources, {len(config.destinations)} destinations)")


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r}: expected a date as YYYY-MM-DD")
        raise  # unreachable: _fail exits


def _run(call):
    """Run a flow in this process and return its final state; bad input exits 2 with the message."""
    from schemas.tenant import ConfigError

    state = call()
    if state.is_failed():
        problem = state.result(raise_on_failure=False)
        if isinstance(problem, (ConfigError, ValueError)):
            _fail(str(problem))
        import traceback

        errors.print("".join(traceback.format_exception(problem)) if isinstance(problem, BaseException)
                     else str(problem), markup=False, soft_wrap=True)
        errors.print(f"[bold red]{state.name}:[/] {problem}", markup=True, soft_wrap=True)
        raise typer.Exit(1)
    return state


def _report(state) -> None:
    """What was closed and published; exit 0 for every Completed state (its name tells the rest)."""
    summary = state.result()
    console.print(f"{state.name}: {state.message or ''}")
    for export in summary.exports:
        for file in export.files:
            console.print(f"  {'new' if file.new_batch else 'kept'}  {_relative(file.path)}  "
                          f"{file.entries} entries, {file.lines} lines")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
