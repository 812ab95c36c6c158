"""A small demo hotel for tests: a PMS server on 127.0.0.1 with a clock, and a tenant file pointing at it."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path

import tomli_w

from flows.closing import CloseSummary, close_periods
from schemas.tenant import PACKAGED_TENANTS, Tenant, load_tenant
from sources.demo_pms.generator import HotelSpec
from sources.demo_pms.server import DemoPmsServer, PmsStore
from transforms.periods import Period, day_start, periods_between
from warehouse.db import opened, query

TABLES = ("sales_line", "payment", "journal_entry", "journal_line", "export_log", "export_batch", "rejects",
          "closed_day")


class Hotel:
    """Everything a close needs, for real: DuckDB file, PMS HTTP server, export folders."""

    def __init__(self, root: Path, *, start: date = date(2026, 3, 1), end: date = date(2026, 3, 31),
                 rooms: int = 10, seed: int = 7, **tenant_changes) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.spec = HotelSpec(seed=seed, timezone="Europe/Paris", history_start=start, history_end=end, rooms=rooms)
        self.store = PmsStore.from_spec(self.spec)
        self.server = DemoPmsServer(self.store).start()
        document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
        document["data_dir"] = str(root / "data")
        document["sources"]["pms"].update(embedded=False, base_url=self.server.url, page_size=500)
        document["destinations"].pop("fec")  # the tests here count journal CSV files; FEC has its own tests
        for name, destination in document["destinations"].items():
            destination["path"] = str(root / "exports" / name)
        for key, value in tenant_changes.items():
            target = document
            *parents, leaf = key.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        self.tenant_file = root / "tenant.toml"
        self.document = document
        self.reconfigure()

    def reconfigure(self, change=None) -> None:
        """Rewrite the tenant file (after ``change(document)``) and load it, as an operator would."""
        if change:
            change(self.document)
        self.tenant_file.write_text(tomli_w.dumps(self.document), encoding="utf-8")
        self.tenant: Tenant = load_tenant(self.tenant_file)

    def stop(self) -> None:
        self.server.stop()

    def morning_after(self, day: date) -> None:
        """Move the PMS clock to 06:00 local the day after ``day``: the night audit is done."""
        self.store.set_clock(day_start(day + timedelta(days=1), self.tenant.timezone, time(6)))

    def close_day(self, day: date) -> CloseSummary:
        """The daily close as the flow runs it (same orchestration, plain steps)."""
        self.morning_after(day)
        return close_periods(self.tenant, [Period(day, day, "day")], window=False, run_id=f"test-{day}")

    def backfill(self, start: date, end: date, kind: str = "day", run_id: str = "test-backfill") -> CloseSummary:
        return close_periods(self.tenant, periods_between(start, end, kind), window=True, run_id=run_id)

    def counts(self) -> dict[str, int]:
        with opened(self.tenant.duckdb_path()) as con:
            return {t: query(con, f"SELECT count(*) AS n FROM {t}").item() for t in TABLES}

    def sql(self, text: str, params: list | None = None):
        with opened(self.tenant.duckdb_path()) as con:
            return query(con, text, params)

    def export_dir(self, name: str = "journal_csv") -> Path:
        return self.root / "exports" / name

    def export_bytes(self, name: str = "journal_csv") -> dict[str, bytes]:
        folder = self.export_dir(name)
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}

    def add_charge(self, record_id: str, posted: datetime, *, amount: str = "10.00", category: str = "FOOD",
                   vat_rate: str = "10.00", currency: str = "EUR", updated: datetime | None = None,
                   visible_from: datetime | None = None, **fields) -> dict:
        record = {"id": record_id, "folio_id": f"F-{record_id}", "outlet": "restaurant", "category": category,
                  "description": "test", "quantity": 1, "amount": amount, "vat_rate": vat_rate,
                  "currency": currency, "status": "posted", "posted_at": _iso(posted),
                  "updated_at": _iso(updated or posted), **fields}
        self.store.add("charges", record, visible_from=visible_from)
        return record

    def add_payment(self, record_id: str, posted: datetime, *, amount: str = "10.00", method: str = "CASH",
                    kind: str = "payment", currency: str = "EUR", updated: datetime | None = None, **fields) -> dict:
        record = {"id": record_id, "folio_id": f"F-{record_id}", "kind": kind, "method": method, "amount": amount,
                  "currency": currency, "company_id": None, "company_name": None, "reference": record_id,
                  "status": "posted", "posted_at": _iso(posted), "updated_at": _iso(updated or posted), **fields}
        self.store.add("payments", record)
        return record

    def local(self, day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
        """A local wall-clock time of the hotel as an aware datetime."""
        return datetime.combine(day, time(hour, minute), tzinfo=self.tenant.tz).replace(fold=fold)


class SavedHotel:
    """A hotel prepared once (PMS records added, days closed) and handed to each test as a fresh copy,
    for the tests that start from the same closes (a close takes seconds).

    The files keep absolute paths (export_delivery.target, dlt's load packages), so every copy is
    restored where the original was made; tests run one at a time and each gets the saved state
    again, never what an earlier test left. The PMS is rebuilt from the same seed and ``records``."""

    def __init__(self, root: Path, records: Callable[[Hotel], None], closes: Iterable[date], **hotel_args) -> None:
        self.place, self.saved = root / "hotel", root / "saved"
        self.records, self.hotel_args = records, hotel_args
        hotel = self._hotel()
        try:
            for day in closes:
                hotel.close_day(day)
        finally:
            hotel.stop()
        self.place.rename(self.saved)

    def _hotel(self) -> Hotel:
        hotel = Hotel(self.place, **self.hotel_args)
        self.records(hotel)
        return hotel

    @contextmanager
    def copy(self) -> Iterator[Hotel]:
        shutil.copytree(self.saved, self.place)
        hotel = self._hotel()
        try:
            yield hotel
        finally:
            hotel.stop()
            shutil.rmtree(self.place)


def _iso(moment: datetime) -> str:
    return moment.isoformat()
