"""HTTP for the accounting APIs: every call takes its turn at the shared rate limiter, goes into
the HTTP audit log (INTERFACES §6, secrets as ``***``), and is retried when retrying is safe.

* 429: the server's ``Retry-After`` (or a minute) pauses the whole organisation, then the call
  is sent again; it does not use up a retry.
* 5xx, dropped connections and timeouts: retried with exponential back-off. A call that timed
  out may have been carried out: POSTs carry an idempotency key, so the server answers the
  retry with the original result instead of doing it twice.
* 401: the access token is refreshed once (the OAuth session stores the rotated refresh token
  first), then the call is sent again.
* Any other 4xx is the caller's: returned as is, so one invalid object is reported while the
  rest goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from destinations.apis.base import json_bytes
from destinations.apis.limiter import SHARED, RateLimiter
from destinations.apis.oauth import OAuthSession
from sources import http_audit


class ApiUnavailable(RuntimeError):
    """The API did not answer usefully after every retry; the message names system and call."""


class ApiClient:
    def __init__(self, system: str, organisation: str, base_url: str, session: OAuthSession, *,
                 headers: dict[str, str] | None = None, limiter: RateLimiter = SHARED,
                 timeout: float = 30.0,  # not money: seconds
                 retries: int = 5, backoff: float = 1.0, max_pauses: int = 20,  # not money: seconds
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.system, self.organisation = system, organisation
        self.base_url = base_url.rstrip("/")
        self.session, self.limiter = session, limiter
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.retries, self.backoff, self.max_pauses, self.sleep = retries, backoff, max_pauses, sleep
        self.client = httpx.Client(timeout=timeout)
        self.calls = 0  # requests sent, for reports and benchmarks

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, params: dict | None = None, json_body: object = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{self.base_url}/{path.lstrip('/')}"
        body = None if json_body is None else json_bytes(json_body)
        failures = pauses = 0
        refreshed = False
        while True:
            token = self.session.access_token()
            sent = {**self.headers, **(headers or {}), "Authorization": f"Bearer {token}"}
            if body is not None:
                sent["Content-Type"] = "application/json"
            response, problem = self._send(method, url, params, sent, body)
            if response is not None and response.status_code == 401 and not refreshed:
                self.session.refresh(rejected=token)
                refreshed = True
                continue
            if response is not None and response.status_code == 429:
                pauses += 1
                if pauses > self.max_pauses:
                    raise ApiUnavailable(f"{self.system} {method} {path}: still rate limited after {pauses - 1} waits")
                self.limiter.pause(self.system, self.organisation, _retry_after(response))
                continue
            if response is not None and response.status_code < 500:
                return response
            failures += 1
            if failures > self.retries:
                what = problem or f"HTTP {response.status_code}"
                raise ApiUnavailable(f"{self.system} {method} {path}: {what} after {self.retries} retries")
            self.sleep(self.backoff * 2 ** (failures - 1))

    def _send(self, method: str, url: str, params: dict | None, headers: dict[str, str], body: bytes | None
              ) -> tuple[httpx.Response | None, str | None]:
        self.limiter.acquire(self.system, self.organisation)
        started = time.perf_counter()
        response = problem = None
        try:
            response = self.client.request(method, url, params=params, headers=headers, content=body)
        except httpx.TimeoutException:
            problem = "timed out"
        except httpx.TransportError as exc:
            problem = f"connection failed ({type(exc).__name__})"
        finally:
            self.limiter.release(self.system, self.organisation)
            self.calls += 1
        full = str(httpx.URL(url, params=params)) if params else url
        http_audit.record(method, full, headers, body, None if response is None else response.status_code,
                          (time.perf_counter() - started) * 1000)
        if response is not None:
            remaining = response.headers.get("X-DayLimit-Remaining")
            self.limiter.observe(self.system, self.organisation, int(remaining) if remaining else None)
        return response, problem


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait: Retry-After (seconds or an HTTP date), else a minute (QBO's advice)."""
    seconds = http_audit.retry_after_seconds(response.headers.get("Retry-After"))
    return 60.0 if seconds is None else seconds
