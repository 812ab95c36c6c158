"""A clock that moves only when told: for the fakes' rate limits and the limiter, no sleeping."""

from __future__ import annotations


class Clock:
    def __init__(self, seconds: float = 1_000.0) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    sleep = advance  # as a limiter's sleep: waiting is moving the clock
