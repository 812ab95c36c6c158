"""``ledgerflow demo``: the daily close, end to end, for the embedded demo hotel.

The demo starts the synthetic PMS on 127.0.0.1 and replays the last ``days`` hotel
days up to ``DEMO_END``, one daily-close flow run per day. Before each run it moves
the PMS clock to 06:00 the next morning, so corrections that the hotel makes to a
past day show up when they would in real life, as a reversal plus a corrected
entry in the next day's export. State starts fresh each time, so the same
``--out`` receives the same bytes.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path

import tomli_w

from schemas.tenant import PACKAGED_TENANTS, load_tenant

DEMO_END = date(2026, 3, 31)  # the week of the spring DST change (29 March in Europe/Paris)
MORNING_AFTER = time(6, 0)


@dataclass
class DemoResult:
    workdir: Path
    tenant_file: Path
    duckdb: Path
    journal: Path
    trial_balance: Path
    exports: Path
    reconciliation: Path | None = None
    review: Path | None = None
    export_files: list[Path] = field(default_factory=list)
    days: list[tuple] = field(default_factory=list)  # (date, state name, entries, lines, notes, matched)
    total_debit: object = None
    total_credit: object = None


def prepare(days: int, out: Path, workdir: Path, base_url: str) -> Path:
    """A fresh work directory and the tenant file the demo runs with (the packaged one, pointed here)."""
    for stale in ("demo.duckdb", "demo.duckdb.wal", "dlt", "inbox", "bank-drop"):
        path = workdir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document["data_dir"] = str(workdir)
    document["sources"]["pms"].update(embedded=False, base_url=base_url)
    document["destinations"] = {"journal_csv": {"type": "csv", "path": str(out), "schedule": "daily"},
                                "fec": {**document["destinations"]["fec"], "path": str(out / "fec")}}
    tenant_file = workdir / "demo.toml"
    tenant_file.write_text("# Written by `ledgerflow demo`: tenants/demo.toml pointed at this directory.\n"
                           + tomli_w.dumps(document), encoding="utf-8")
    return tenant_file


def run_demo(days: int, out: Path, workdir: Path, progress=None) -> DemoResult:
    from destinations.delivery.local import publish
    from flows.closing import CloseSummary
    from flows.daily_close import daily_close
    from flows.recon_files import report_json
    from flows.reporting import write_csv
    from sources.demo_pms.bank import demo_bank_rows
    from sources.demo_pms.generator import HotelSpec
    from sources.demo_pms.server import DemoPmsServer, PmsStore
    from transforms.periods import day_start
    from transforms.trial_balance import trial_balance
    from warehouse.db import opened
    from warehouse.journals import entry_lines
    from warehouse.recon import reconciliation_status, review_rows

    workdir, out = workdir.resolve(), out.resolve()
    packaged = load_tenant(PACKAGED_TENANTS / "demo.toml")
    settings = packaged.sources["pms"]
    first = DEMO_END - timedelta(days=days - 1)
    spec = HotelSpec(seed=settings.seed, timezone=packaged.timezone,
                     history_start=min(settings.history_start, first - timedelta(days=14)),
                     history_end=DEMO_END + timedelta(days=4), rooms=settings.rooms, currency=packaged.currency)
    store = PmsStore.from_spec(spec)
    with DemoPmsServer(store) as server:
        tenant_file = prepare(days, out, workdir, server.url)
        tenant = load_tenant(tenant_file)
        result = DemoResult(workdir, tenant_file, tenant.duckdb_path(), workdir / "journal.csv",
                            workdir / "trial_balance.csv", out, workdir / "reconciliation.json",
                            workdir / "review.csv")
        bank_lines, items = demo_bank_rows(spec, spec.history_start, DEMO_END)
        for index in range(days):
            day = first + timedelta(days=index)
            drop_statement(tenant, bank_lines, items, day, first)
            store.set_clock(day_start(day + timedelta(days=1), tenant.timezone, MORNING_AFTER))
            state = daily_close(str(tenant_file), day, return_state=True)
            summary: CloseSummary = state.result()
            files = [f for e in summary.exports for f in e.files]
            # Earlier days that changed after they were exported: their reversal + correction files.
            notes = [f.path.name for e in summary.exports if e.period.start != day for f in e.files if f.new_batch]
            result.export_files += [f.path for f in files if f.new_batch]
            recon = summary.reconciliation
            result.days.append((day, state.name, sum(f.entries for f in files), sum(f.lines for f in files), notes,
                                recon.report["matched_lines"] if recon else 0))
            if progress:
                progress(day)
    with opened(tenant.duckdb_path()) as con:
        lines = entry_lines(con, tenant, first, DEMO_END)
        write_csv(review_rows(con), result.review)
        status = reconciliation_status(con)
    publish(workdir, result.reconciliation.name, report_json(status))
    write_csv(lines.drop("line_no"), result.journal)
    balance = trial_balance(lines)
    write_csv(balance, result.trial_balance)
    result.total_debit, result.total_credit = balance["debit"].sum(), balance["credit"].sum()
    return result


def drop_statement(tenant, bank_lines: list[dict], items: list[dict], day: date, first: date) -> None:
    """The morning after ``day``: the bank's camt.053 statement of that day reaches the tenant's
    statement folder, and the PMS's open-items export (what was issued so far and was still
    open when the demo started) the reconciliation inbox."""
    import csv
    import io

    from sources.recon_csv import ITEM_COLUMNS

    def write(kind: str, name: str, columns, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=[c.name for c in columns], lineterminator="\r\n",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        folder = tenant.inbox_path() / kind
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.getvalue(), encoding="utf-8")

    from sources.demo_pms.bank import camt053_statement

    drop = tenant.data_path() / "bank-drop"  # the tenant's bank_files source
    drop.mkdir(parents=True, exist_ok=True)
    (drop / f"camt053-{day:%Y%m%d}.xml").write_bytes(camt053_statement(bank_lines, day))
    write("items", f"open-items-{day:%Y%m%d}.csv", ITEM_COLUMNS,
          [r for r in items if r["issue_date"] <= day.isoformat()
           and (r["paid_on"] is None or r["paid_on"] >= first.isoformat())])
