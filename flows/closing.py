"""The close, stage by stage: extract -> stage -> journal -> export -> run summary.

Shared by ``daily_close`` and ``backfill``. Each task does one IO step and calls
plain functions of sources/, warehouse/ and destinations/; no business logic here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from prefect import get_run_logger, tags, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from destinations.export import ExportResult, export_invoice_periods, export_periods
from flows.reporting import frame_table, markdown_table, trial_balance_markdown
from schemas.tenant import ApiDestination, Tenant
from sources.extract import ExtractError, ExtractResult, extract
from transforms.periods import Period, business_date_of, day_start, utc_window
from transforms.trial_balance import trial_balance
from warehouse import rejects as reject_store
from warehouse.db import opened
from warehouse.journals import JournalResult, close_days, entry_lines
from warehouse.staging import StageResult, stager

SCHEDULE_OF_PERIOD = {"day": "daily", "week": "weekly", "month": "monthly"}


def _now() -> datetime:
    return datetime.now(UTC)


def current_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:  # outside a run (unit use of the tasks' .fn)
        return logging.getLogger("ledgerflow")


def open_business_date(tenant: Tenant, now: datetime | None = None) -> date:
    """The hotel day that is still running now; every day before it can be closed."""
    return business_date_of(now or _now(), tenant.timezone, tenant.business_day_cutoff)


def check_closable(tenant: Tenant, last: date) -> None:
    running = open_business_date(tenant)
    if last >= running:
        raise ValueError(f"business day {last} is not over yet: in {tenant.timezone} the day {running} is "
                         f"running and closes at {tenant.business_day_cutoff:%H:%M} on {running + timedelta(days=1)}")


def extract_step(tenant: Tenant, source: str, updated_since: datetime | None,
                 posted_window: tuple[datetime, datetime] | None) -> ExtractResult:
    result = extract(tenant, source, updated_since=updated_since, posted_window=posted_window)
    _logger().info("source %s (%s): %s", source, result.mode,
                   ", ".join(f"{n} {t}" for t, n in sorted(result.row_counts.items())) or "nothing new")
    return result


def stage_step(tenant: Tenant, source: str, load_ids: list[str], run_id: str) -> StageResult:
    with opened(tenant.duckdb_path()) as con:
        result = stager(tenant.sources[source].type)(con, tenant, source, load_ids, run_id=run_id, now=_now())
    if result.rejects.height:
        _logger().warning("source %s: %d problems in %d records quarantined in table rejects", source,
                          result.rejects.height, result.rejects.get_column("record_id").n_unique())
    return result


def journal_step(tenant: Tenant, source: str, dates: list[date], run_id: str) -> JournalResult:
    with opened(tenant.duckdb_path()) as con:
        result = close_days(con, tenant, source, dates, run_id=run_id, now=_now())
    log = _logger()
    log.info("journals %s: %d days, %d entries written, %d drafts replaced, %d unchanged", source,
             len(result.dates), result.inserted, result.deleted, result.unchanged)
    for entry in result.reversed:
        log.warning("exported entry %s changed in the source: reversed and corrected", entry)
    for row in result.suspense.iter_rows(named=True):
        log.warning("%s: %s posted to suspense (%s, %d lines)", row["business_date"], row["reason"], row["amount"],
                    row["lines"])
    return result


def _take_invoices(con, tenant: Tenant, run_id: str) -> None:
    """INVOICES.csv files in ``<inbox>/invoices`` into ``issued_invoice``; bad files are quarantined and
    become open rejects (so the run ends CompletedWithRejects), the good ones go on."""
    from warehouse.invoices import take_invoice_inbox

    intake = take_invoice_inbox(con, tenant, run_id=run_id, now=_now())
    for name, count in intake.loaded:
        _logger().info("invoices: %s: %d invoices new or replaced", name, count)
    for name, reason in intake.quarantined:
        _logger().warning("invoices: %s quarantined: %s", name, reason)
    for problem in intake.rejected:
        _logger().warning("invoices: %s", problem)


def _post(con, tenant: Tenant, destination: str, periods: list[Period], run_id: str) -> ExportResult:
    """An API destination: the periods' entries posted (``flows.post``); failures become problems of
    the run, and what was not posted waits for the next run."""
    from flows.post import post_period, posting_stopped

    span = Period(periods[0].start, periods[-1].end, periods[0].kind)
    try:
        summary = post_period(tenant, destination, span.start, span.end, run_id=run_id, con=con)
    except posting_stopped() as exc:
        return ExportResult(destination, span, posted=getattr(exc, "summary", None), problems=[
            f"{destination}: posting stopped: {exc}; the rest is posted by the next run"])
    _logger().info("%s: %s", destination, summary.line())
    if summary.waiting:
        _logger().info("%s: %d payments wait for their invoice to be posted", destination, len(summary.waiting))
    return ExportResult(destination, span, posted=summary,
                        problems=[f"{destination}: {o.object_id} not posted: {o.message}" for o in summary.failed])


def publish_step(tenant: Tenant, destinations: list[str], periods: list[Period], run_id: str,
                 on_period: Callable[[int, int], None] | None = None) -> list[ExportResult]:
    """Publish every period, in order, to each destination (see ``export_periods``)."""
    results = []
    total = len(periods) * len(destinations)
    with opened(tenant.duckdb_path()) as con:
        if any(tenant.destinations[d].type == "einvoices" for d in destinations):
            _take_invoices(con, tenant, run_id)
        for number, destination in enumerate(destinations):
            def progress(done: int, _: int, before: int = number * len(periods)) -> None:
                if on_period:
                    on_period(before + done, total)

            if isinstance(tenant.destinations[destination], ApiDestination):
                exported = [_post(con, tenant, destination, periods, run_id)]
                progress(len(periods), len(periods))
            elif tenant.destinations[destination].type == "einvoices":
                exported = export_invoice_periods(con, tenant, destination, periods, run_id=run_id, now=_now())
                progress(len(periods), len(periods))
            else:
                exported = export_periods(con, tenant, destination, periods, run_id=run_id, now=_now(),
                                          on_period=progress)
            for file in (f for result in exported for f in result.files if f.new_batch):
                _logger().info("exported %s: %d entries, %d lines", file.path, file.entries, file.lines)
            for record in (d for result in exported for d in result.deliveries if d.channel != "local"):
                if record.status == "ok":
                    _logger().info("delivered %s by %s to %s", record.file_name, record.channel, record.target)
            for problem in (p for result in exported for p in result.problems):
                _logger().warning("%s", problem)
            results += exported
    return results


def reconcile_step(tenant: Tenant, run_id: str, as_of: date):
    from flows import reconcile  # imported here: flows.reconcile builds on this module

    return reconcile.reconcile_step(tenant, run_id, "daily_close", as_of)


@dataclass(frozen=True)
class Steps:
    """How each stage is run: as plain calls, or as Prefect tasks wrapping the same functions."""

    extract: Callable = extract_step
    stage: Callable = stage_step
    journal: Callable = journal_step
    reconcile: Callable = reconcile_step
    publish: Callable = publish_step


PLAIN_STEPS = Steps()
TASK_STEPS = Steps(
    extract=task(extract_step, name="extract", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE,
                 task_run_name="extract {source}"),
    stage=task(stage_step, name="stage", cache_policy=NO_CACHE, task_run_name="stage {source}"),
    journal=task(journal_step, name="build journals", cache_policy=NO_CACHE, task_run_name="journals {source}"),
    reconcile=task(reconcile_step, name="reconcile", cache_policy=NO_CACHE, task_run_name="reconcile"),
    publish=task(publish_step, name="publish", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10,
                 task_run_name="publish {destinations}"),
)


@dataclass
class CloseSummary:
    tenant: str
    run_id: str
    periods: list[Period]
    extracts: list[ExtractResult] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)
    journals: list[JournalResult] = field(default_factory=list)
    exports: list[ExportResult] = field(default_factory=list)
    open_rejects_frame: pl.DataFrame = field(default_factory=pl.DataFrame)
    held_back: list[tuple[str, date]] = field(default_factory=list)
    trial_balance: pl.DataFrame | None = None
    reconciliation: object | None = None  # flows.reconcile.ReconcileSummary when the tenant reconciles
    unread: list[tuple[str, str]] = field(default_factory=list)  # (source, why): processors, billing, entries

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end

    @property
    def open_rejects(self) -> int:
        return self.open_rejects_frame.height

    @property
    def export_problems(self) -> list[str]:
        """Periods a format refused and files not delivered: exported data waits, the state says why."""
        return [problem for export in self.exports for problem in export.problems]

    @property
    def suspense(self) -> pl.DataFrame:
        frames = [j.suspense for j in self.journals if j.suspense.height]
        return pl.concat(frames) if frames else pl.DataFrame()

    def final_state(self):
        problems = []
        if self.open_rejects:
            held = ", ".join(sorted({d.isoformat() for _, d in self.held_back})) or "none"
            problems.append(f"{self.open_rejects} open rejects; days held back from export: {held}")
        if self.suspense.height:
            problems.append(f"{self.suspense.height} unmapped codes posted to suspense")
        problems += [f"source {name} not read: {why}" for name, why in self.unread]
        problems += self.export_problems
        if not problems:
            return Completed(data=self, message=f"closed {self.start}..{self.end}")
        name = "CompletedWithRejects" if self.open_rejects else "CompletedWithWarnings"
        return Completed(data=self, name=name, message="; ".join(problems))


def close_periods(tenant: Tenant, periods: list[Period], *, window: bool, run_id: str,
                  steps: Steps = PLAIN_STEPS, on_period: Callable[[int, int], None] | None = None) -> CloseSummary:
    """Close ``periods`` in order for every source of the tenant: extract once, stage, build the
    journals, then publish period after period to the destinations scheduled for that period."""
    summary = CloseSummary(tenant.id, run_id, periods)
    dates = [d for p in periods for d in p.dates()]
    check_closable(tenant, max(dates))
    # Every source but the bank's (reconciliation reads those): sales are journalled per business day;
    # processors' payouts and billing systems' invoices become open items; imported entries are journals.
    for source in sorted(n for n, s in tenant.sources.items() if s.role != "bank"):
        settings = tenant.sources[source]
        try:
            if window:  # padded by a day: staging, not the window, decides which day a record belongs to
                posted = utc_window(min(dates) - timedelta(days=1), max(dates) + timedelta(days=1),
                                    tenant.timezone, tenant.business_day_cutoff)
                extracted = steps.extract(tenant, source, None, posted)
            else:
                since = day_start(min(dates) - timedelta(days=settings.lookback_days), tenant.timezone,
                                  tenant.business_day_cutoff)
                extracted = steps.extract(tenant, source, since, None)
        except ExtractError as exc:
            if settings.role == "sales":  # the days' journals would be incomplete: the close stops here
                raise
            # A processor, billing system or entries API that cannot be read: what it would bring waits
            # for the next run (its cursor did not move); the day's sales are closed and published.
            _logger().warning("source %s not read: %s", source, exc)
            summary.unread.append((source, str(exc)))
            continue
        staged = steps.stage(tenant, source, extracted.load_ids, run_id)
        summary.extracts.append(extracted)
        summary.stages.append(staged)
        if settings.role == "sales":
            summary.journals.append(steps.journal(tenant, source, dates, run_id))
    if tenant.reconciliation is not None:  # before publishing: the bank entries go out with the period
        summary.reconciliation = steps.reconcile(tenant, run_id, max(dates))
    schedule = SCHEDULE_OF_PERIOD[periods[0].kind]
    destinations = sorted(n for n, d in tenant.destinations.items() if d.schedule == schedule)
    if destinations:
        summary.exports = steps.publish(tenant, destinations, periods, run_id, on_period)
    else:
        _logger().info("no destination of tenant %s is scheduled %s; nothing exported", tenant.id, schedule)
    with opened(tenant.duckdb_path()) as con:
        summary.trial_balance = trial_balance(entry_lines(con, tenant, summary.start, summary.end))
        summary.open_rejects_frame = reject_store.open_rejects(con)
        summary.held_back = sorted((s, d) for s, days in reject_store.held_back(con, tenant.sources).items()
                                   for d in days)
    return summary


def run_close(tenant: Tenant, periods: list[Period], *, window: bool) -> CloseSummary:
    """Inside a flow: the close as Prefect tasks tagged ``tenant:<id>``, then the run's artifacts."""
    progress = None
    if len(periods) > 1:
        progress = create_progress_artifact(0.0, description=f"{tenant.id}: periods closed")

    shown = [0]

    def advance(done: int, total: int) -> None:
        percent = 100 * done // total  # at most a hundred API calls, however many periods
        if progress and percent > shown[0]:
            shown[0] = percent
            update_progress_artifact(progress, float(percent))

    with tags(f"tenant:{tenant.id}"):
        summary = close_periods(tenant, periods, window=window, run_id=current_run_id(), steps=TASK_STEPS,
                                on_period=advance)
    publish_artifacts(tenant, summary)
    return summary


def publish_artifacts(tenant: Tenant, summary: CloseSummary) -> None:
    """Trial balance, rejects and suspense, and the export manifest as Prefect markdown artifacts."""
    key = tenant.id.replace("_", "-")
    create_markdown_artifact(
        trial_balance_markdown(summary.trial_balance, f"Trial balance {tenant.id} {summary.start}..{summary.end}"),
        key=f"{key}-trial-balance", description=f"Trial balance of {tenant.name}, {summary.start}..{summary.end}")
    rejects = summary.open_rejects_frame.select("business_date", "source", "table_name", "record_id",
                                                "column_name", "value", "reason")
    create_markdown_artifact(
        "".join(f"## Source {name} not read\n\n{why}\n\n" for name, why in summary.unread)
        + f"## Open rejects: {rejects.height}\n\nDays held back from export: "
        f"{', '.join(f'{d} ({s})' for s, d in summary.held_back) or 'none'}\n\n" + frame_table(rejects)
        + ("\n\n## Posted to suspense\n\n" + frame_table(summary.suspense) if summary.suspense.height else ""),
        key=f"{key}-rejects", description="Records quarantined in the rejects table, and suspense postings")
    files = [(e.destination, e.period.key, f.path.name, f.entries, f.lines, "new" if f.new_batch else "unchanged",
              f.sha256[:12]) for e in summary.exports for f in e.files]
    sent = [(d.destination, d.file_name, d.channel, d.target, d.status, d.detail) for e in summary.exports
            for d in e.deliveries if d.channel != "local"]
    posted = [(e.destination, e.posted.system, len(e.posted.posted) + len(e.posted.found), e.posted.skipped,
               len(e.posted.failed), e.posted.requests) for e in summary.exports if e.posted is not None]
    problems = "".join(f"- {problem}\n" for problem in summary.export_problems)
    create_markdown_artifact(
        "## Export manifest\n\n" + markdown_table(files, ["destination", "period", "file", "entries", "lines",
                                                           "batch", "sha256"])
        + ("\n\n## Deliveries\n\n" + markdown_table(sent, ["destination", "file", "channel", "target", "status",
                                                            "detail"]) if sent else "")
        + ("\n\n## Posted to accounting APIs\n\n" + markdown_table(posted, [
            "destination", "system", "posted", "skipped (already exported)", "failed", "requests"]) if posted else "")
        + ("\n\n## Export problems\n\n" + problems if problems else ""),
        key=f"{key}-export-manifest", description="Files published and delivered by this run")
    if summary.reconciliation is not None:
        from flows.reconcile import publish_artifacts as publish_reconciliation

        publish_reconciliation(tenant, summary.reconciliation)
