"""The HTTP audit log of INTERFACES §6.

When ``LEDGERFLOW_HTTP_LOG=path.jsonl`` is set, every outgoing request of a source
or destination is appended as one JSON line, with secrets replaced by ``"***"``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from schemas.sources import SECRET_NAME_PATTERN

ENV = "LEDGERFLOW_HTTP_LOG"
SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
_lock = threading.Lock()


def _redact_mapping(values: dict) -> dict:
    return {k: ("***" if SECRET_NAME.search(str(k)) else _redact(v)) for k, v in values.items()}


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return _redact_mapping(value)
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, "***" if SECRET_NAME.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*:")))


def record(method: str, url: str, headers: dict, body: bytes | str | None, status: int | None,
           response_ms: float | None) -> None:
    """Append one exchange to the audit log, if one is configured."""
    path = os.environ.get(ENV)
    if not path:
        return
    entry: dict = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": method,
        "url": redact_url(url),
        "headers": _redact_mapping(dict(headers)),
    }
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            entry["json"] = _redact(json.loads(text))
        except ValueError:
            entry["body"] = text
    entry["status"] = status
    entry["response_ms"] = None if response_ms is None else round(response_ms, 1)  # not money
    line = json.dumps(entry, ensure_ascii=False, default=str)
    with _lock, open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def audited_adapter():
    """A ``requests`` transport adapter that logs every exchange (dlt's REST client is built on
    requests; response hooks are not enough, since a request's own hooks replace the session's)."""
    import time

    from requests.adapters import HTTPAdapter

    class AuditAdapter(HTTPAdapter):
        def send(self, request, *args, **kwargs):
            started = time.perf_counter()
            try:
                response = super().send(request, *args, **kwargs)
            except Exception:
                record(request.method, request.url, dict(request.headers), request.body, None,
                       (time.perf_counter() - started) * 1000)
                raise
            record(request.method, request.url, dict(request.headers), request.body, response.status_code,
                   (time.perf_counter() - started) * 1000)
            return response

    return AuditAdapter()


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))  # not money: seconds
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
