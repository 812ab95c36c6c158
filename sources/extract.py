"""Run a tenant's source through dlt into its DuckDB file (``raw_<source>`` dataset)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from schemas.tenant import Tenant
from sources import http_audit
from sources.records import ExtractReport

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


def _audited_session(settings=None):
    """A requests session that retries 429, 5xx and time-outs (honouring Retry-After) as the source's
    settings say, and writes every call to the HTTP audit log."""
    from dlt.sources.helpers.requests import Client

    session = Client(request_timeout=getattr(settings, "timeout_seconds", 30),
                     request_max_attempts=getattr(settings, "retries", 2) + 1,
                     request_backoff_factor=getattr(settings, "backoff_seconds", 0.5),
                     request_max_retry_delay=300).session
    adapter = http_audit.audited_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class ExtractRequest:
    """What a source type's ``extraction`` gets: the tenant, its settings, the window, and the means."""

    tenant: Tenant
    name: str
    settings: object  # the source's settings model (schemas.tenant / schemas.sources)
    updated_since: datetime | None  # incremental: what changed since (the source may keep its own cursor)
    posted_window: tuple[datetime, datetime] | None  # backfill: what happened in [start, end)
    base_url: str | None  # an override of the configured URL (the demo starts its own PMS)
    session: object  # requests.Session: retries 429/5xx, honours Retry-After, writes the HTTP audit log
    report: ExtractReport
    stack: ExitStack  # servers or clients the extraction starts are closed when the run is over


@dataclass
class Extraction:
    """A source type's answer: the dlt source to run, where it reads (for messages), and what to do
    once its rows are safely loaded (e.g. acknowledge them to the system)."""

    source: object  # dlt source
    url: str
    after_load: Callable[[list[str]], None] | None = None  # called with the load ids


# type -> "module:function(ExtractRequest) -> Extraction"; imported when a source of that type runs.
EXTRACTORS = {
    "demo_pms": "sources.demo_pms:extraction",
    "rest_pms": "sources.rest_pms:extraction",
    "stripe": "sources.stripe:extraction",
    "paypal": "sources.paypal:extraction",
    "training": "sources.training:extraction",
    "entries_api": "sources.entries_api:extraction",
}


def registered(registry: dict[str, str], source_type: str, what: str) -> Callable:
    """The function a registry names for ``source_type`` ("module:function"), imported now: a run
    imports only the code of the sources its tenant has."""
    import importlib

    if source_type not in registry:
        raise ExtractError(f"source type {source_type} has no {what} (known: {', '.join(sorted(registry))})")
    module, function = registry[source_type].split(":")
    return getattr(importlib.import_module(module), function)


def extractor(source_type: str) -> Callable[[ExtractRequest], Extraction]:
    return registered(EXTRACTORS, source_type, "extractor")


def extract(tenant: Tenant, source_name: str, *, updated_since: datetime | None = None,
            posted_window: tuple[datetime, datetime] | None = None, base_url: str | None = None) -> ExtractResult:
    """Extract one source: incrementally from ``updated_since`` or for an explicit ``posted_window``.

    ``base_url`` overrides the configured one (the demo starts its own PMS).
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    settings = tenant.sources[source_name]
    report = ExtractReport()
    with ExitStack() as stack:
        request = ExtractRequest(tenant, source_name, settings, updated_since, posted_window, base_url,
                                 _audited_session(settings), report, stack)
        try:
            extraction = extractor(settings.type)(request)
        except ValueError as exc:  # settings the extraction cannot work with (no URL, no secret, …)
            raise ExtractError(f"source {source_name}: {exc}") from exc
        source, url = extraction.source, extraction.url
        pipeline = pipeline_for(tenant, source_name)
        finished: list[str] = []
        try:
            if pipeline.has_pending_data:
                # A run died after extracting: dlt would load that package and extract nothing new.
                log.warning("source %s: finishing a load package an earlier run left behind", source_name)
                pipeline.normalize()
                finished = list(pipeline.load().loads_ids)
            info = pipeline.run(source)
            if extraction.after_load is not None:
                extraction.after_load(finished + list(info.loads_ids))
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
