"""dlt source for the demo PMS: charges and payments into ``raw_<source>`` of the tenant's DuckDB.

Declarative ``rest_api`` configuration: keyset pagination on ``next_cursor``, and either

* an incremental cursor on ``updated_at`` (daily runs: only what changed since the
  last run, including late corrections of past days), or
* an explicit posting window (backfills: everything posted in the window, as it is now).

Raw tables keep every version a record had when we saw it (primary key: id + a
hash of the record as delivered), so a corrected record adds a row and a record
delivered twice does not. Before dlt sees a record, ``RecordChecker`` makes sure
money, rates and times are exact: dlt would otherwise round ``"12.345"`` into a
DECIMAL(18,2) column without a word. Bad fields are set to null and described in
``lf_invalid`` (JSON); staging turns them into rejects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from schemas.money import MoneyError, parse_money, parse_quantity, parse_rate
from sources.records import ExtractReport, format_instant, parse_instant, record_hash, rows_to_arrow

__all__ = ["ExtractReport", "RecordChecker", "arrow_schema", "demo_pms_source", "format_instant", "parse_instant",
           "record_hash"]

_TEXT_FIELDS = {
    "charges": ("id", "folio_id", "reservation_id", "outlet", "category", "description", "currency", "status"),
    "payments": ("id", "folio_id", "reservation_id", "kind", "method", "currency", "company_id", "company_name",
                 "reference", "status"),
}
_DECIMAL_FIELDS = {
    "charges": {"quantity": (12, 3), "amount": (18, 2), "vat_rate": (5, 2)},
    "payments": {"amount": (18, 2)},
}
_TIMES = ("posted_at", "updated_at")
_OURS = ("lf_invalid", "lf_extra", "lf_record_hash")
_PARSERS: dict[str, Callable[[object], object]] = {"amount": parse_money, "vat_rate": parse_rate,
                                                   "quantity": parse_quantity}


def arrow_schema(table: str):
    """Exact column types of a raw table: money as decimal128, times as UTC microseconds."""
    import pyarrow as pa

    fields = [pa.field(name, pa.string()) for name in _TEXT_FIELDS[table]]
    fields += [pa.field(name, pa.decimal128(*size)) for name, size in _DECIMAL_FIELDS[table].items()]
    fields += [pa.field(name, pa.timestamp("us", tz="UTC")) for name in _TIMES]
    fields += [pa.field(name, pa.string()) for name in _OURS]
    return pa.schema(fields)


class RecordChecker:
    """dlt map step: exact money and times before dlt coerces anything."""

    def __init__(self, table: str, report: ExtractReport) -> None:
        self.table = table
        self.report = report
        # Worked out once per table, not per record (a million records a run).
        self.parsers = [(name, parse) for name, parse in _PARSERS.items() if name in _DECIMAL_FIELDS[table]]
        self.known = frozenset({*_TEXT_FIELDS[table], *_DECIMAL_FIELDS[table], *_TIMES})

    def __call__(self, record: dict) -> dict:
        digest = record_hash(record)
        out = dict(record)
        problems: dict[str, dict[str, str]] = {}
        if not isinstance(record.get("id"), (str, int)) or str(record.get("id")).strip() == "":
            problems["id"] = {"value": repr(record.get("id")), "reason": "is missing"}
            out["id"] = f"(no id {digest[:12]})"
        else:
            out["id"] = str(record["id"])
        for name, parse in self.parsers:
            if record.get(name) is not None:
                try:
                    out[name] = parse(record[name])
                except MoneyError as exc:
                    problems[name] = {"value": str(record[name]), "reason": str(exc)}
                    out[name] = None
        for name in _TIMES:
            if record.get(name) is not None:
                try:
                    out[name] = parse_instant(record[name])
                except ValueError as exc:
                    problems[name] = {"value": str(record[name]), "reason": str(exc)}
                    out[name] = None
        for name in _TEXT_FIELDS[self.table]:
            value = out.get(name)
            if value is not None and not isinstance(value, str):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[name] = str(value)
                else:
                    problems[name] = {"value": repr(value), "reason": "is not text"}
                    out[name] = None
        extra = None if self.known.issuperset(record) else {k: v for k, v in record.items() if k not in self.known}
        out["lf_invalid"] = json.dumps(problems, ensure_ascii=False, sort_keys=True) if problems else None
        out["lf_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None
        out["lf_record_hash"] = digest
        self.report.delivered[(self.table, out["id"], digest)] += 1
        return out


def demo_pms_source(base_url: str, *, page_size: int, report: ExtractReport,
                    updated_since: datetime | None = None,
                    posted_window: tuple[datetime, datetime] | None = None, session=None):
    """The dlt source. Give either ``updated_since`` (incremental) or ``posted_window`` (backfill)."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    if (updated_since is None) == (posted_window is None):
        raise ValueError("give exactly one of updated_since (incremental) and posted_window (backfill)")
    endpoint: dict = {"data_selector": "data", "params": {"limit": page_size}}
    if posted_window:
        endpoint["params"].update(posted_from=format_instant(posted_window[0]),
                                  posted_to=format_instant(posted_window[1]))
    else:
        endpoint["incremental"] = {
            "start_param": "updated_since",
            "cursor_path": "updated_at",
            "initial_value": updated_since.astimezone(UTC),
            "convert": format_instant,
            "on_cursor_value_missing": "include",  # RecordChecker nulls bad times; staging rejects them
        }
    client: dict = {
        "base_url": base_url.rstrip("/") + "/",
        "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
    }
    if session is not None:
        client["session"] = session
    source = rest_api_source(
        {
            "client": client,
            "resource_defaults": {"max_table_nesting": 0},
            "resources": [{"name": f"{table}_pages", "endpoint": {**endpoint, "path": table}}
                          for table in _TEXT_FIELDS],
        },
        name="demo_pms",
    )
    resources = []
    for table in _TEXT_FIELDS:
        pages = source.resources[f"{table}_pages"]
        # Position 1: right after the paginator, before dlt's incremental step reads the cursor.
        pages.add_map(RecordChecker(table, report), insert_at=1)
        resources.append(pages | as_arrow(table))
    return dlt.source(name="demo_pms")(lambda: resources)()


def extraction(request):
    """``sources.extract`` entry point: the configured PMS, or the embedded synthetic hotel started
    for this extraction (one consistent snapshot for every page)."""
    from sources.extract import Extraction

    settings, tenant = request.settings, request.tenant
    url = request.base_url or settings.base_url
    if url is None and settings.embedded:
        from sources.demo_pms.generator import HotelSpec
        from sources.demo_pms.server import DemoPmsServer, PmsStore

        spec = HotelSpec(seed=settings.seed, timezone=tenant.timezone, history_start=settings.history_start,
                         history_end=settings.history_end, rooms=settings.rooms, currency=tenant.currency)
        store = PmsStore.from_spec(spec)
        store.set_clock(datetime.now(UTC))
        url = request.stack.enter_context(DemoPmsServer(store)).url
    if url is None:
        raise ValueError("set base_url, or embedded = true")
    source = demo_pms_source(url, page_size=settings.page_size, report=request.report,
                             updated_since=request.updated_since, posted_window=request.posted_window,
                             session=request.session)
    return Extraction(source, url)


def as_arrow(table: str):
    """A page of checked records -> one typed Arrow table (dlt then writes Parquet, DuckDB copies it)."""
    import dlt

    schema = arrow_schema(table)

    @dlt.transformer(name=table, write_disposition="merge", primary_key=["id", "lf_record_hash"])
    def to_arrow(page: list[dict]):
        rows = page if isinstance(page, list) else [page]
        yield rows_to_arrow(rows, schema)

    return to_arrow
