"""The retry policy: when to try a deferred recipient again, or give up.

A pure function of the attempt count, the time the message was accepted
and the time now. The schedule lists the waits after the first, second,
... failed attempt; its last step repeats. No wait runs past the deadline
(``accepted_at + max_age``): the last retry happens at the deadline, and a
deferral at or after it gives the recipient up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    schedule: tuple[timedelta, ...]
    max_age: timedelta

    def __post_init__(self) -> None:
        if not self.schedule:
            raise ValueError("a retry schedule needs at least one step")
        if any(step <= timedelta(0) for step in self.schedule):
            raise ValueError("every retry step must be longer than zero")

    def next_attempt(
        self, attempts: int, accepted_at: datetime, now: datetime
    ) -> datetime | None:
        """After ``attempts`` failed tries, when to try again; None: give up."""
        deadline = accepted_at + self.max_age
        if now >= deadline:
            return None
        step = self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]
        return min(now + step, deadline)

    def deadline(self, accepted_at: datetime) -> datetime:
        return accepted_at + self.max_age
