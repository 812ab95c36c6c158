"""The shared rate limiter, on a fake clock: windows never exceeded, Retry-After honoured, the
day's quota refused rather than waited for, concurrency capped."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest

from destinations.apis.base import idempotency_key, json_bytes, short_reference
from destinations.apis.limiter import DailyLimitReached, Limits, RateLimiter
from tests.destinations.apis.clock import Clock


def instant_limiter() -> RateLimiter:
    """The real limits on a clock that jumps instead of sleeping: a Retry-After costs no time."""
    clock = Clock(0.0)
    return RateLimiter(now=clock, sleep=clock.sleep)


def limiter(clock: Clock, **limits: Limits) -> RateLimiter:
    return RateLimiter(limits or {"xero": Limits(((60, 60.0), (5000, 86_400.0)), concurrent=5)}, now=clock,
                       sleep=clock.sleep)


def test_no_minute_ever_holds_more_calls_than_the_limit():
    clock = Clock(0.0)
    shared = limiter(clock)
    stamps = []
    for _ in range(200):
        shared.acquire("xero", "org")
        stamps.append(clock.seconds)
        shared.release("xero", "org")
    assert max(sum(1 for s in stamps if t <= s < t + 60) for t in stamps) == 60
    assert stamps[59] == 0 and stamps[60] == 60.0  # the 61st call waits for the first to leave the window
    assert shared.waited("xero", "org") == pytest.approx(180.0)


def test_organisations_have_their_own_windows():
    clock = Clock(0.0)
    shared = limiter(clock)
    for org in ("a", "b"):
        for _ in range(60):
            shared.acquire("xero", org)
            shared.release("xero", org)
    assert clock.seconds == 0


def test_retry_after_pauses_the_organisation():
    clock = Clock(0.0)
    shared = limiter(clock)
    shared.pause("xero", "org", 30)
    shared.acquire("xero", "org")
    assert clock.seconds == 30


def test_the_days_quota_is_refused_not_waited_for():
    clock = Clock(0.0)
    shared = limiter(clock, xero=Limits(((3, 86_400.0),), concurrent=5))
    for _ in range(3):
        shared.acquire("xero", "org")
        shared.release("xero", "org")
    with pytest.raises(DailyLimitReached, match="3 API calls a day"):
        shared.acquire("xero", "org")
    other = limiter(Clock(0.0))
    other.observe("xero", "org", 0)
    with pytest.raises(DailyLimitReached, match="the server says none remain"):
        other.acquire("xero", "org")


def test_no_more_calls_at_once_than_allowed():
    shared = RateLimiter({"qbo": Limits(((10_000, 60.0),), concurrent=2)})
    inside, peak, lock = [0], [0], threading.Lock()

    def call():
        shared.acquire("qbo", "realm")
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        threading.Event().wait(0.01)
        with lock:
            inside[0] -= 1
        shared.release("qbo", "realm")

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2


def test_money_goes_out_as_its_exact_decimal_text_never_through_a_float():
    amounts = {"a": Decimal("120.10"), "b": [Decimal("-0.01"), Decimal("12345678901234567.89")], "c": "x"}
    amounts.update({f"n{i}": Decimal(i) for i in range(12)})  # placeholders 1 and 11 must not mix
    text = json_bytes(amounts)
    assert text.startswith(b'{"a":120.10,"b":[-0.01,12345678901234567.89],"c":"x","n0":0,"n1":1,')
    assert b'"n11":11}' in text
    assert json.loads(text, parse_float=Decimal)["b"][1] == Decimal("12345678901234567.89")


def test_keys_and_references_are_stable_and_short_enough():
    key = idempotency_key("qbo", "demo-pms-20260311-v1", "abc", 50)
    assert key == idempotency_key("qbo", "demo-pms-20260311-v1", "abc", 50) and len(key) == 50
    assert key != idempotency_key("qbo", "demo-pms-20260311-v1", "abd", 50)
    assert len(short_reference("demo-pms-20260311-v1")) == 21 and short_reference("x").startswith("LF")
