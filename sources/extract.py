"""Run a tenant's source through dlt into its DuckDB file (``raw_<source>`` dataset)."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.tenant import DemoPmsSource, Tenant
from sources import http_audit

log = logging.getLogger("ledgerflow.extract")


class ExtractError(RuntimeError):
    """The source could not be read; nothing was loaded and the cursor did not move."""


@dataclass(frozen=True)
class ExtractResult:
    source: str
    mode: str  # "incremental" or "window"
    load_ids: list[str]
    row_counts: dict[str, int]
    duplicates: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


def dataset_name(source_name: str) -> str:
    return f"raw_{source_name}"


def pipeline_for(tenant: Tenant, source_name: str):
    import dlt

    tenant.data_path().mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"ledgerflow_{tenant.id}_{source_name}",
        destination=dlt.destinations.duckdb(str(tenant.duckdb_path())),
        dataset_name=dataset_name(source_name),
        pipelines_dir=str(tenant.data_path() / "dlt"),
        progress="log" if log.isEnabledFor(logging.DEBUG) else None,
    )


def _audited_session():
    from dlt.sources.helpers.requests import Client

    session = Client(request_timeout=30, request_max_attempts=3, request_backoff_factor=0.5).session
    adapter = http_audit.audited_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def extract(tenant: Tenant, source_name: str, *, updated_since: datetime | None = None,
            posted_window: tuple[datetime, datetime] | None = None, base_url: str | None = None) -> ExtractResult:
    """Extract one source: incrementally from ``updated_since`` or for an explicit ``posted_window``.

    ``base_url`` overrides the configured one (the demo starts its own PMS).
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    settings = tenant.sources[source_name]
    if not isinstance(settings, DemoPmsSource):  # pragma: no cover - one source type so far
        raise ExtractError(f"source {source_name}: type {settings.type} has no extractor")
    from sources.demo_pms import ExtractReport, demo_pms_source

    report = ExtractReport()
    with ExitStack() as stack:
        url = base_url or settings.base_url
        if url is None and settings.embedded:
            from sources.demo_pms.generator import HotelSpec
            from sources.demo_pms.server import DemoPmsServer, PmsStore

            spec = HotelSpec(seed=settings.seed, timezone=tenant.timezone, history_start=settings.history_start,
                             history_end=settings.history_end, rooms=settings.rooms, currency=tenant.currency)
            # The hotel as it is when the extraction starts: one consistent snapshot for every page.
            store = PmsStore.from_spec(spec)
            store.set_clock(datetime.now(UTC))
            url = stack.enter_context(DemoPmsServer(store)).url
        if url is None:
            raise ExtractError(f"source {source_name}: set base_url, or embedded = true")
        source = demo_pms_source(url, page_size=settings.page_size, report=report, updated_since=updated_since,
                                 posted_window=posted_window, session=_audited_session())
        pipeline = pipeline_for(tenant, source_name)
        finished: list[str] = []
        try:
            if pipeline.has_pending_data:
                # A run died after extracting: dlt would load that package and extract nothing new.
                log.warning("source %s: finishing a load package an earlier run left behind", source_name)
                pipeline.normalize()
                finished = list(pipeline.load().loads_ids)
            info = pipeline.run(source)
        except PipelineStepFailed as exc:
            cause = exc.exception
            while cause.__cause__ is not None and not str(cause):
                cause = cause.__cause__
            raise ExtractError(f"source {source_name} ({url}): {exc.step} failed: "
                               f"{type(cause).__name__}: {cause}") from exc
    normalize = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = {table: count for table, count in (normalize.row_counts if normalize else {}).items()
              if not table.startswith("_dlt")}
    duplicates = report.duplicates()
    for table, record_id, times in duplicates:
        log.warning("source %s: %s record %s was delivered %d times in one extraction; kept once",
                    source_name, table, record_id, times)
    return ExtractResult(source=source_name, mode="window" if posted_window else "incremental",
                         load_ids=finished + list(info.loads_ids), row_counts=counts, duplicates=duplicates)
