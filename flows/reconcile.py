"""``reconcile(tenant, trigger)``: match the tenant's bank lines against its open items.

inbox -> open state -> engine -> match trail, review queue, problems -> bank journal
-> artifacts and alerts. Also a step of ``daily_close`` (before publishing, so the
day's bank entries go out with it). Started by a schedule, by an event (a new bank
file, a new invoice: see ``prefect.yaml``), or by hand (``ledgerflow reconcile run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl
from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows.bank_intake import BankIntake, take_bank_sources
from flows.closing import _logger, current_run_id
from flows.events import claim_run_request
from flows.reporting import frame_table, markdown_table
from schemas.tenant import Tenant, load_tenant
from transforms.recon.engine import Reconciliation, Rules
from warehouse.db import opened
from warehouse.recon import InboxResult, Recorded, open_state, record, store_bank_journal, take_inbox


@dataclass
class ReconcileSummary:
    tenant: str
    run_id: str
    trigger: str
    as_of: date
    inbox: InboxResult
    report: dict
    recorded: Recorded
    bank_entries: int = 0
    deliveries: list = field(default_factory=list)
    bank: BankIntake = field(default_factory=BankIntake)
    sources: SourceRefresh = field(default_factory=lambda: SourceRefresh())
    pushes: list = field(default_factory=list)  # warehouse.training_push.PushResult per billing source

    @property
    def push_problems(self) -> list[str]:
        """What the billing systems were not told, or told and refused: new conflicts, failures,
        refused update rows and update files."""
        problems = []
        for push in self.pushes:
            problems += [f"{push.source}: conflict: {c}" for c in push.conflicts]
            problems += [f"{push.source}: not sent (next run retries): {f}" for f in push.failed]
            problems += [f"{push.source}: update refused: {r}" for r in push.rejects]
            problems += [f"{push.source}: update file {n} quarantined: {r}" for n, r in push.quarantined]
        return problems

    @property
    def warnings(self) -> list[str]:
        return self.inbox.warnings + self.bank.warnings + self.sources.warnings

    @property
    def quarantined(self) -> list[tuple[str, str]]:
        """Inbox files and bank statement files refused this run: (file, reason)."""
        return self.inbox.quarantined + self.bank.quarantined

    @property
    def new_problems(self) -> pl.DataFrame:
        return self.recorded.new_problems

    def final_state(self):
        problems = []
        rejected = bool(self.quarantined or self.inbox.row_rejects or self.bank.failed)
        if self.quarantined or self.inbox.row_rejects:
            problems.append(f"{len(self.quarantined)} files quarantined, {self.inbox.row_rejects} bank lines rejected")
        problems += [f"bank source {name} not read: {why}" for name, why in self.bank.failed]
        problems += [f"source {name} not read: {why}" for name, why in self.sources.failed]
        rejected = rejected or bool(self.sources.rejects) or any(p.rejects or p.quarantined for p in self.pushes)
        problems += self.push_problems
        if self.sources.rejects:
            problems.append(f"{self.sources.rejects} records of item sources quarantined in table rejects")
        if self.bank.gaps.height:
            problems.append(f"{self.bank.gaps.height} new gaps between bank statements")
        problems += self.warnings
        if self.new_problems.height:
            kinds = self.new_problems.group_by("kind").len().sort("kind")
            problems.append("new: " + ", ".join(f"{n} {k}" for k, n in kinds.iter_rows()))
        problems += [f"alert not delivered ({d.channel}): {d.detail}" for d in self.deliveries if not d.ok]
        message = (f"{self.report['matched_lines']} of {self.report['bank_lines']} open bank lines matched, "
                   f"{len(self.report['suggestions'])} suggestions")
        if not problems:
            return Completed(data=self, message=message)
        name = "CompletedWithRejects" if rejected else "CompletedWithWarnings"
        return Completed(data=self, name=name, message=message + "; " + "; ".join(problems))


@dataclass
class SourceRefresh:
    """What a reconcile run brought in from the item sources (processors' payouts, billing systems'
    invoices) before matching; a source that cannot be read is reported and the run goes on."""

    staged: list[tuple[str, int]] = field(default_factory=list)  # (source, open items written)
    events: list[tuple[str, int]] = field(default_factory=list)  # (source, webhook events the pull settled)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    rejects: int = 0
    warnings: list[str] = field(default_factory=list)


ITEM_ROLES = ("processor", "items")


def refresh_item_sources(tenant: Tenant, *, run_id: str, now: datetime) -> SourceRefresh:
    """Extract and stage every processor and billing source incrementally (each looks back its
    ``lookback_days``), so that payouts and invoices announced since the last close are matched now."""
    from datetime import timedelta

    from flows.closing import stage_step
    from flows.events import settle_events, waiting_events
    from sources.extract import ExtractError, extract

    refresh = SourceRefresh()
    for name, settings in sorted(tenant.sources.items()):
        if settings.role not in ITEM_ROLES:
            continue
        events = waiting_events(tenant, name)  # listed before the pull: the pull sees what they announce
        try:
            extracted = extract(tenant, name, updated_since=now - timedelta(days=settings.lookback_days))
            staged = stage_step(tenant, name, extracted.load_ids, run_id)
        except Exception as exc:  # noqa: BLE001 - reported; the loads wait (unstaged) for the next run
            refresh.failed.append((name, str(exc) if isinstance(exc, ExtractError) else f"{type(exc).__name__}: {exc}"))
            continue
        refresh.staged.append((name, staged.items))
        refresh.rejects += staged.rejects.height
        if events:
            refresh.events.append((name, settle_events(tenant, name, events, run_id)))
    return refresh


def push_back(con, tenant: Tenant, *, run_id: str, now: datetime) -> list:
    """After matching: tell the billing systems that can hear it what the bank paid (and send the
    finance team's invoice updates); ``warehouse.training_push`` never raises, it reports."""
    from warehouse.training_push import push_training

    return [push_training(con, tenant, name, run_id=run_id, now=now)
            for name, settings in sorted(tenant.sources.items()) if settings.type == "training"]


def rules_of(tenant: Tenant) -> Rules:
    recon = tenant.reconciliation
    assert recon is not None
    return Rules(tolerance_days=recon.tolerance_days, amount_tolerance_pct=recon.amount_tolerance_pct,
                 processor_fee_max_pct=recon.processor_fee_max_pct, name_threshold=recon.name_threshold)


def reconcile_tenant(tenant: Tenant, *, run_id: str, trigger: str = "manual", as_of: date | None = None,
                     now: datetime | None = None, notify: bool = True, refresh: bool = False) -> ReconcileSummary:
    """One reconcile run, as plain calls (the flow and ``daily_close`` wrap it in a task).

    ``refresh``: first bring the item sources up to date (the reconcile flow does; ``daily_close``
    has just extracted every source itself)."""
    from transforms.recon.engine import reconcile as match

    if tenant.reconciliation is None:
        raise ValueError(f"tenant {tenant.id} has no [reconciliation] table: nothing to reconcile")
    now = now or datetime.now(UTC)
    claim_run_request(tenant, run_id, now=now)  # before any read: an event from now on asks for another run
    as_of = as_of or now.astimezone(tenant.tz).date()
    sources = refresh_item_sources(tenant, run_id=run_id, now=now) if refresh else SourceRefresh()
    intake = take_bank_sources(tenant, run_id=run_id, now=now)
    with opened(tenant.duckdb_path()) as con:
        inbox = take_inbox(con, tenant, run_id=run_id, now=now)
        if inbox.loaded:  # statement files dropped into the inbox are checked for continuity too
            from warehouse.bank_statements import new_gaps

            intake.gaps = pl.concat([intake.gaps, new_gaps(con, run_id=run_id)])
        bank, items, barred, settled = open_state(con)
        outcome: Reconciliation = match(bank, items, rules_of(tenant), rejected=barred, settled=settled,
                                        as_of=as_of)
        recorded = record(con, outcome, run_id=run_id, now=now, as_of=as_of,
                          alert_after_days=tenant.reconciliation.alert_after_days)
        plan = store_bank_journal(con, tenant, run_id=run_id, now=now)
        pushes = push_back(con, tenant, run_id=run_id, now=now)
    summary = ReconcileSummary(tenant.id, run_id, trigger, as_of, inbox, outcome.report(), recorded,
                               bank_entries=0 if plan is None else plan.entries.height, bank=intake,
                               sources=sources, pushes=pushes)
    log = _logger()
    for name, why in sources.failed:
        log.warning("source %s not read: %s", name, why)
    for name, reason in summary.quarantined:
        log.warning("file %s quarantined: %s", name, reason)
    log.info("reconcile %s (%s): %d rows recorded, %d suggestions, %d new problems", tenant.id, trigger,
             recorded.new_rows, recorded.suggestions, recorded.new_problems.height)
    if notify and tenant.notify is not None and tenant.notify.enabled and (
            recorded.new_problems.height or summary.quarantined or intake.gaps.height or intake.failed
            or sources.failed or summary.warnings or summary.push_problems):
        from destinations.notify import Delivery, NotifyConfigError, send_alert

        try:
            summary.deliveries = send_alert(tenant.notify, alert_of(tenant, summary))
        except NotifyConfigError as exc:  # the run's work is done and stored: say so, do not fail it
            summary.deliveries = [Delivery("config", "notify", False, str(exc))]
        for delivery in summary.deliveries:
            (log.info if delivery.ok else log.warning)("alert via %s to %s: %s", delivery.channel, delivery.target,
                                                       delivery.detail)
    return summary


def alert_of(tenant: Tenant, summary: ReconcileSummary):
    """One alert per run listing what is new: people act on changes, not on the same list daily."""
    from destinations.notify import Alert

    problems = summary.new_problems
    lines = [f"Reconciliation of {tenant.name} ({summary.trigger}, as of {summary.as_of}):"]
    for kind, group in problems.group_by("kind", maintain_order=True):
        lines.append(f"- {kind[0]}: {group.height}")
        for row in group.head(10).iter_rows(named=True):
            what = row["bank_line_id"] or row["item_id"]
            lines.append(f"    {what}: {row['detail']}" + (f" ({row['age_days']} days)" if row["age_days"] else ""))
    for name, reason in summary.quarantined:
        lines.append(f"- quarantined file {name}: {reason}")
    for gap in summary.bank.gaps.iter_rows(named=True):
        lines.append(f"- statement gap on {gap['bank_account']}: {gap['previous_statement']} closes at "
                     f"{gap['previous_closing']}, {gap['next_statement']} opens at {gap['next_opening']} "
                     f"(difference {gap['difference']}): a statement is missing or lines were booked twice")
    for name, why in summary.bank.failed + summary.sources.failed:
        lines.append(f"- source {name} could not be read: {why}")
    lines += [f"- {warning}" for warning in summary.warnings + summary.push_problems]
    payload = {
        "tenant": tenant.id, "run_id": summary.run_id, "as_of": summary.as_of.isoformat(),
        "counts": {k: n for k, n in problems.group_by("kind").len().sort("kind").iter_rows()},
        "problems": [{k: (str(v) if v is not None and k == "amount" else v) for k, v in row.items()
                      if k not in ("first_seen_run", "run_id")} for row in problems.head(500).iter_rows(named=True)],
        "quarantined": [{"file": n, "reason": r} for n, r in summary.quarantined],
        "statement_gaps": [{k: str(v) for k, v in gap.items() if k != "first_seen_run"}
                           for gap in summary.bank.gaps.iter_rows(named=True)],
        "bank_sources_failed": [{"source": n, "reason": r} for n, r in summary.bank.failed],
    }
    severity = "error" if summary.quarantined or summary.bank.gaps.height or summary.bank.failed or problems.filter(
        pl.col("kind").is_in(["double_payment", "currency_mismatch"])).height else "warning"
    count = (problems.height + len(summary.quarantined) + summary.bank.gaps.height + len(summary.bank.failed)
             + len(summary.sources.failed) + len(summary.warnings) + len(summary.push_problems))
    return Alert(tenant=tenant.id, subject=f"{count} reconciliation problems need a look",
                 text="\n".join(lines), payload=payload, severity=severity)


def publish_artifacts(tenant: Tenant, summary: ReconcileSummary) -> None:
    """Match summary, review queue and problems as Prefect markdown artifacts."""
    key = tenant.id.replace("_", "-")
    report = summary.report
    counts = [("bank lines open before the run", report["bank_lines"]),
              ("items open before the run", report["items"]),
              ("bank lines matched", report["matched_lines"]), ("items matched", report["matched_items"]),
              ("suggestions to review", len(report["suggestions"])),
              ("bank lines unmatched", len(report["unmatched_lines"])),
              ("bank journal entries written", summary.bank_entries)]
    counts += [(f"open items staged from {name}", n) for name, n in summary.sources.staged]
    counts += [(f"webhook events of {name} settled", n) for name, n in summary.sources.events]
    counts += [(f"payments told to {p.source}", p.payments_pushed) for p in summary.pushes]
    counts += [(f"invoice updates applied in {p.source}", p.updates_applied) for p in summary.pushes]
    files = [(name, rows, "loaded") for name, rows in summary.inbox.loaded]
    files += [(f"{name} ({source})", rows, "loaded (new lines)") for source, name, rows in summary.bank.loaded]
    files += [(f"{name} ({source})", 0, "taken before: skipped") for source, name in summary.bank.skipped]
    files += [(name, 0, f"quarantined: {reason}") for name, reason in summary.quarantined]
    files += [(f"source {name}", 0, f"not read: {why}") for name, why in summary.bank.failed + summary.sources.failed]
    gaps = [(g["bank_account"], g["previous_statement"], g["previous_closing"], g["next_statement"], g["next_opening"],
             g["difference"]) for g in summary.bank.gaps.iter_rows(named=True)]
    create_markdown_artifact(
        f"## Reconciliation {tenant.id} ({summary.trigger}, as of {summary.as_of})\n\n"
        + markdown_table(counts, ["", "count"]) + "\n\n### Rows by rule\n\n"
        + markdown_table(sorted(report["by_rule"].items()), ["rule", "rows"])
        + ("\n\n### Files\n\n" + markdown_table(files, ["file", "rows", "status"]) if files else "")
        + ("\n\n### Gaps between statements\n\n" + markdown_table(gaps, [
            "account", "statement", "closing", "next statement", "opening", "difference"]) if gaps else ""),
        key=f"{key}-match-summary", description="What the reconcile run matched, by rule")
    suggestions = [(s["bank_line_id"], ", ".join(s["candidates"]), s["why"]) for s in report["suggestions"]]
    create_markdown_artifact(
        "## Suggestions to review\n\n" + markdown_table(suggestions, ["bank line", "candidates", "why"])
        + "\n\nReview with `ledgerflow reconcile review TENANT --out review.csv`, fill in `decision`, "
          "then `ledgerflow reconcile decide TENANT review.csv`.\n\n## Problems\n\n"
        + frame_table(summary.recorded.problems.select("kind", "bank_line_id", "item_id", "amount", "age_days",
                                                       "detail")),
        key=f"{key}-unmatched", description="Suggestions and unmatched or discrepant lines and items")


def reconcile_step(tenant: Tenant, run_id: str, trigger: str = "daily_close", as_of: date | None = None,
                   refresh: bool = False):
    return reconcile_tenant(tenant, run_id=run_id, trigger=trigger, as_of=as_of, refresh=refresh)


reconcile_task = task(reconcile_step, name="reconcile", cache_policy=NO_CACHE, task_run_name="reconcile {trigger}")


@flow(name="reconcile", flow_run_name="reconcile {tenant} ({trigger})")
def reconcile(tenant: str = "demo", trigger: str = "manual", as_of: date | None = None):
    """Match the tenant's bank lines against its open items: take new inbox files, apply the
    rules, record every decision, rebuild the bank journal, publish artifacts, alert.

    ``trigger`` says why the run happened (``schedule``, ``bank-file``, ``invoice``, ``webhook``, ``manual``)
    and ends up in the run's name and the alert."""
    config = load_tenant(tenant)
    with tags(f"tenant:{config.id}"):
        summary = reconcile_task(config, current_run_id(), trigger, as_of, refresh=True)
    publish_artifacts(config, summary)
    return summary.final_state()
