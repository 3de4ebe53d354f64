"""A fake clock for code that takes ``clock`` and ``sleep``: sleeping moves it, nothing waits."""

from __future__ import annotations


class Clock:
    """``clock()`` reads it, ``clock.sleep(s)`` counts the wait and moves it on."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
