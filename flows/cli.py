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
    for column in ("business day", "state", "entries", "lines", "late changes published"):
        table.add_column(column)
    for day, state, entries, lines, notes in result.days:
        table.add_row(str(day), state, str(entries), str(lines), "\n".join(notes))
    console.print(table)
    console.print(f"Trial balance: debit {result.total_debit} = credit {result.total_credit}\n")
    console.print(f"DuckDB file     {_relative(result.duckdb)}")
    console.print(f"Journal         {_relative(result.journal)}")
    console.print(f"Trial balance   {_relative(result.trial_balance)}")
    console.print(f"Export files    {_relative(result.exports)}/ ({len(result.export_files)} files, with manifests)")
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
