"""One rate limiter shared by every call to an accounting API in the process.

Each key (system, organisation) has sliding windows (Xero: 60 calls a minute and 5,000 a
day per organisation; QBO: 500 a minute and 10 a second per realm) and a number of calls
allowed at once. ``acquire`` waits until every window has room, so the limits are never
exceeded by us. A call counts from when it is sent until a window's length after its answer
came back: the server counts it at some instant in between, so however the network delays
calls, no window the server sees holds more than the limit. ``pause`` honours a server's
``Retry-After`` (someone else may share the organisation's quota); ``observe`` takes the
server's own count of what is left today. A day's quota is not waited for:
``DailyLimitReached`` says so and the rest waits for the next run. The clock and the sleep
are injectable, so tests and benchmarks need not wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

DAY = 86_400.0


class DailyLimitReached(RuntimeError):
    """The organisation's calls for today are used up; nothing more is sent today."""


@dataclass(frozen=True)
class Limits:
    windows: tuple[tuple[int, float], ...]  # (calls, seconds)
    concurrent: int = 5


LIMITS = {
    "xero": Limits(((60, 60.0), (5_000, DAY)), concurrent=5),
    "qbo": Limits(((500, 60.0), (10, 1.0)), concurrent=10),
}


@dataclass
class _Key:
    limits: Limits
    calls: list[deque] = field(default_factory=list)
    paused_until: float = 0.0  # not money: seconds
    day_remaining: int | None = None
    in_flight: int = 0
    waited: float = 0.0  # seconds spent waiting for room, for reports


class RateLimiter:
    def __init__(self, limits: dict[str, Limits] | None = None, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = dict(LIMITS if limits is None else limits)
        self.now, self.sleep = now, sleep
        self._keys: dict[tuple[str, str], _Key] = {}
        self._lock = threading.Condition()

    def _key(self, system: str, organisation: str) -> _Key:
        key = self._keys.get((system, organisation))
        if key is None:
            limits = self.limits[system]
            key = self._keys[(system, organisation)] = _Key(limits, [deque() for _ in limits.windows])
        return key

    def acquire(self, system: str, organisation: str) -> None:
        """Wait until a call may go out now, and count it as in flight."""
        with self._lock:
            key = self._key(system, organisation)
            while True:
                if key.day_remaining is not None and key.day_remaining <= 0:
                    raise DailyLimitReached(f"{system} organisation {organisation}: the day's API calls are used up "
                                            "(the server says none remain); the rest is posted by the next run")
                wait = self._wait(key)
                if wait == 0:
                    break
                if wait is None:  # the calls in flight fill a window or the concurrency: a release wakes us
                    self._lock.wait(timeout=1.0)
                    continue
                key.waited += wait
                self._lock.release()
                try:
                    self.sleep(wait)
                finally:
                    self._lock.acquire()
            key.in_flight += 1
            if key.day_remaining is not None:
                key.day_remaining -= 1

    def _wait(self, key: _Key) -> float | None:
        """Seconds until every window has room for one more call (0: now; None: after a release)."""
        now = self.now()
        wait = max(0.0, key.paused_until - now)
        if key.in_flight >= key.limits.concurrent:
            return None if wait == 0 else wait
        for (limit, seconds), calls in zip(key.limits.windows, key.calls, strict=True):
            while calls and calls[0] <= now - seconds:
                calls.popleft()
            if len(calls) + key.in_flight < limit:
                continue
            if seconds >= DAY and len(calls) >= limit:
                raise DailyLimitReached(f"{limit} API calls a day reached for this organisation; the rest is "
                                        "posted by the next run")
            if len(calls) + key.in_flight - limit >= len(calls):  # only calls in flight would leave room
                return None if wait == 0 else wait
            # the oldest completed calls leave the window one by one
            wait = max(wait, calls[len(calls) + key.in_flight - limit] + seconds - now)
        return wait

    def release(self, system: str, organisation: str) -> None:
        """The call's answer came back: it now counts in every window from this instant."""
        with self._lock:
            key = self._key(system, organisation)
            key.in_flight -= 1
            stamp = self.now()
            for calls in key.calls:
                calls.append(stamp)
            self._lock.notify_all()

    def pause(self, system: str, organisation: str, seconds: float) -> None:
        """The server asked to wait (429 Retry-After): nothing goes to this organisation until then."""
        with self._lock:
            key = self._key(system, organisation)
            key.paused_until = max(key.paused_until, self.now() + seconds)

    def observe(self, system: str, organisation: str, day_remaining: int | None) -> None:
        """The server's count of calls left today (Xero's X-DayLimit-Remaining), when it sends one."""
        if day_remaining is None:
            return
        with self._lock:
            self._key(system, organisation).day_remaining = day_remaining

    def waited(self, system: str, organisation: str) -> float:
        with self._lock:
            return self._key(system, organisation).waited


SHARED = RateLimiter()  # the process's limiter: every client takes its turn here
