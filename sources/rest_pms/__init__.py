"""Any PMS or POS with a REST API, described in the tenant file instead of written as code.

``[sources.NAME]`` with ``type = "rest_pms"`` (``schemas.sources.RestPmsSource``) says how to sign
in, how pages follow each other, which parameters ask for what changed since the last run (daily)
or what was posted in a window (backfill), and where each canonical field sits in the API's
records. The records are mapped onto the raw columns of the demo PMS (``sources.demo_pms``), so
staging, journals and reconciliation treat every PMS alike.

The dlt ``rest_api`` source does the paging; before dlt sees a record, ``RecordMapper`` moves its
fields into place, translates the API's vocabulary (``values``), turns minor units into exact
amounts, and hands the result to the demo PMS's ``RecordChecker``, which refuses inexact money and
times without an offset. Whatever is refused is set to null and described in ``lf_invalid``;
staging turns it into rejects. The record's top-level fields no mapping reads are kept in
``lf_extra``, and the version hash covers them, as the demo PMS source does.

Secrets come from environment variables named in the tenant file. A PMS that refuses them (401/403)
stops the extraction with an error naming those variables: an expired key is not a reason to retry.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.sources import REST_PMS_FIELDS, RestPmsResource, RestPmsSource
from sources.demo_pms import RecordChecker, as_arrow
from sources.records import ExtractReport, format_instant

__all__ = ["CredentialsRefused", "RecordMapper", "extraction", "rest_pms_source"]

TABLES = ("charges", "payments")


class CredentialsRefused(RuntimeError):
    """The PMS answered 401/403: the credentials in the named variables are wrong, expired or revoked."""


# --- signing in --------------------------------------------------------------------------------

def _secret(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set (it holds the PMS credentials)")
    return value


class Credentials:
    """A ``requests`` auth: signs each request as the tenant file says, and turns a refusal into
    ``CredentialsRefused`` naming the variables to renew."""

    def __init__(self, auth, session) -> None:
        self.auth = auth
        self.session = session
        self.variables = [getattr(auth, key) for key in ("token_env", "key_env", "username_env", "password_env",
                                                         "client_id_env", "client_secret_env") if hasattr(auth, key)]
        self._values = {name: _secret(name) for name in self.variables}  # a missing one fails before any call
        self._token: tuple[str, float] | None = None  # oauth2: access token, monotonic expiry

    def __call__(self, request):
        kind = self.auth.type
        if kind == "bearer":
            request.headers["Authorization"] = f"Bearer {self._values[self.auth.token_env]}"
        elif kind == "api_key" and self.auth.location == "header":
            request.headers[self.auth.name] = self._values[self.auth.key_env]
        elif kind == "api_key":
            request.prepare_url(request.url, {self.auth.name: self._values[self.auth.key_env]})
        elif kind == "basic":
            from requests.auth import HTTPBasicAuth

            HTTPBasicAuth(self._values[self.auth.username_env], self._values[self.auth.password_env])(request)
        elif kind == "oauth2":
            request.headers["Authorization"] = f"Bearer {self._access_token()}"
        request.register_hook("response", self._refused)
        return request

    def _access_token(self) -> str:
        if self._token is None or time.monotonic() >= self._token[1]:
            data = {"grant_type": "client_credentials"}
            if self.auth.scopes:
                data["scope"] = " ".join(self.auth.scopes)
            response = self.session.post(self.auth.token_url, data=data, hooks={"response": self._refused}, auth=(
                self._values[self.auth.client_id_env], self._values[self.auth.client_secret_env]))
            body = response.json()
            lifetime = float(body.get("expires_in") or 3600)  # not money: seconds
            self._token = (body["access_token"], time.monotonic() + max(0.0, lifetime - 60))
        return self._token[0]

    def _refused(self, response, **send_options):
        if response.status_code not in (401, 403):
            return response
        request = response.request
        if self.auth.type == "oauth2" and response.status_code == 401 and self._token is not None \
                and not getattr(request, "lf_token_renewed", False):
            # An access token may expire before its expires_in: one new token, the same request again
            # (through the same, audited, transport).
            self._token = None
            retry = request.copy()
            retry.headers["Authorization"] = f"Bearer {self._access_token()}"
            retry.lf_token_renewed = True
            response.close()
            again = response.connection.send(retry, **send_options)
            again.history.append(response)
            return self._refused(again, **send_options)
        raise CredentialsRefused(
            f"the PMS refused the credentials ({response.status_code} on {request.method} "
            f"{request.path_url.split('?')[0]}): renew {' and '.join(self.variables)}")


# --- records -----------------------------------------------------------------------------------

def _lookup(record: object, path: str) -> object:
    """The value at a dotted path (``guest.company.name``, ``lines.0.amount``); None if absent."""
    value = record
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _minor_units(value: object, scale: int) -> Decimal:
    """Integer minor units -> the exact amount (``1234`` at scale 2 -> ``12.34``)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, int) and not isinstance(text, bool):
        return Decimal(text).scaleb(-scale)
    if isinstance(text, str) and text.lstrip("+-").isdigit():
        return Decimal(int(text)).scaleb(-scale)
    raise ValueError(f"is not a whole number of minor units (amount_scale = {scale})")


class RecordMapper:
    """dlt map step: one API record -> the raw columns of ``charges`` or ``payments``, checked."""

    def __init__(self, table: str, resource: RestPmsResource, timezone: str | None, report: ExtractReport) -> None:
        self.table = table
        self.resource = resource
        self.zone = ZoneInfo(timezone) if timezone else None
        self.checker = RecordChecker(table, report)
        self.read = {path.split(".")[0] for path in resource.fields.values()}

    def __call__(self, record: dict) -> dict:
        mapped: dict[str, object] = dict(self.resource.constants)
        problems: dict[str, dict[str, str]] = {}
        for name, path in self.resource.fields.items():
            value = _lookup(record, path)
            try:
                mapped[name] = None if value is None else self._convert(name, value)
            except ValueError as exc:
                problems[name] = {"value": str(value), "reason": str(exc)}
                mapped[name] = None
        # Unread fields go to lf_extra (RecordChecker keeps what it does not know); one named like a
        # canonical field it is not mapped to is kept as "raw.<name>".
        for key, value in record.items():
            if key not in self.read:
                mapped[f"raw.{key}" if key in REST_PMS_FIELDS[self.table] else key] = value
        out = self.checker(mapped)
        if problems:
            found = json.loads(out["lf_invalid"]) if out["lf_invalid"] else {}
            out["lf_invalid"] = json.dumps({**found, **problems}, ensure_ascii=False, sort_keys=True)
        return out

    def _convert(self, name: str, value: object) -> object:
        if name in self.resource.values:
            known = self.resource.values[name]
            if str(value) not in known:
                raise ValueError(f"is not in values.{name} (known: {', '.join(known)})")
            return known[str(value)]
        if name == "amount" and self.resource.amount_scale is not None:
            return _minor_units(value, self.resource.amount_scale)
        if name in ("posted_at", "updated_at") and self.zone is not None and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value  # RecordChecker says why
            if moment.tzinfo is None:
                return moment.replace(tzinfo=self.zone).isoformat()
        return value


# --- the dlt source ----------------------------------------------------------------------------

def param_time(moment: datetime, time_format: str) -> str:
    """A time as the API wants it in a query parameter (always from UTC)."""
    moment = moment.astimezone(UTC)
    if time_format == "iso":
        return format_instant(moment)
    if time_format == "epoch":
        return str(int(moment.timestamp()))
    if time_format == "epoch_ms":
        return str(int(moment.timestamp() * 1000))
    return moment.strftime(time_format)


def _paginator(settings: RestPmsSource) -> dict:
    """The dlt ``rest_api`` paginator, every option spelt out (dlt's defaults assume other APIs)."""
    pages = settings.paginator
    if pages.type == "cursor":
        return {"type": "cursor", "cursor_path": pages.cursor_path, "cursor_param": pages.cursor_param}
    if pages.type == "page_number":
        return {"type": "page_number", "page_param": pages.page_param, "base_page": pages.base_page,
                "total_path": pages.total_path, "stop_after_empty_page": True}
    if pages.type == "offset":
        return {"type": "offset", "limit": settings.page_size, "offset_param": pages.offset_param,
                "limit_param": pages.limit_param, "total_path": pages.total_path, "stop_after_empty_page": True}
    if pages.type == "header_link":
        return {"type": "header_link", "links_next_key": pages.links_next_key}
    return {"type": "json_link", "next_url_path": pages.next_url_path}


def _endpoint(settings: RestPmsSource, table: str, resource: RestPmsResource, *, updated_since: datetime | None,
              posted_window: tuple[datetime, datetime] | None, now: datetime) -> dict:
    params: dict = dict(resource.params)
    if settings.page_size_param and settings.paginator.type != "offset":
        params[settings.page_size_param] = settings.page_size
    endpoint: dict = {"path": resource.path, "params": params}
    if resource.data_selector:
        endpoint["data_selector"] = resource.data_selector
    if posted_window:
        if resource.window is None:
            raise ValueError(f"resources.{table} has no window (from_param, to_param): this API cannot be read "
                             "for a past window")
        params[resource.window.from_param] = param_time(posted_window[0], resource.time_format)
        params[resource.window.to_param] = param_time(posted_window[1], resource.time_format)
    elif resource.incremental:
        incremental = resource.incremental
        endpoint["incremental"] = {
            "start_param": incremental.start_param,
            "cursor_path": incremental.cursor,  # a canonical time: RecordMapper runs first
            "initial_value": updated_since.astimezone(UTC),
            "convert": lambda moment: param_time(moment, resource.time_format),
            "on_cursor_value_missing": "include",  # RecordChecker nulls bad times; staging rejects them
        }
        if incremental.end_param:
            endpoint["incremental"].update(end_param=incremental.end_param, end_value=now)
    return endpoint


def rest_pms_source(settings: RestPmsSource, base_url: str, *, report: ExtractReport,
                    updated_since: datetime | None = None, posted_window: tuple[datetime, datetime] | None = None,
                    session=None, now: datetime | None = None):
    """The dlt source. Give either ``updated_since`` (incremental) or ``posted_window`` (backfill)."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    if (updated_since is None) == (posted_window is None):
        raise ValueError("give exactly one of updated_since (incremental) and posted_window (backfill)")
    now = now or datetime.now(UTC)
    tables = {table: getattr(settings.resources, table) for table in TABLES
              if getattr(settings.resources, table) is not None}
    client: dict = {"base_url": base_url.rstrip("/") + "/", "paginator": _paginator(settings)}
    if session is not None:
        client["session"] = session
    source = rest_api_source(
        {
            "client": client,
            "resource_defaults": {"max_table_nesting": 0},
            "resources": [{"name": f"{table}_pages",
                           "endpoint": _endpoint(settings, table, resource, updated_since=updated_since,
                                                 posted_window=posted_window, now=now)}
                          for table, resource in tables.items()],
        },
        name="rest_pms",
    )
    resources = []
    for table, resource in tables.items():
        pages = source.resources[f"{table}_pages"]
        # Position 1: right after the paginator, before dlt's incremental step reads the cursor.
        pages.add_map(RecordMapper(table, resource, settings.timezone, report), insert_at=1)
        resources.append(pages | as_arrow(table))
    return dlt.source(name="rest_pms")(lambda: resources)()


def extraction(request):
    """``sources.extract`` entry point."""
    from sources.extract import Extraction

    settings: RestPmsSource = request.settings
    url = request.base_url or settings.resolved_base_url()
    if url is None:
        raise ValueError("set base_url (or LEDGERFLOW_REST_PMS_BASE_URL)")
    if settings.auth.type != "none":
        # On the session rather than the client: the token request of oauth2 goes through it too,
        # so the audit log sees every call.
        request.session.auth = Credentials(settings.auth, request.session)
    source = rest_pms_source(settings, url, report=request.report, updated_since=request.updated_since,
                             posted_window=request.posted_window, session=request.session)
    return Extraction(source, url)
