"""The retry policy, as a table of attempts, ages and expected answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postroom.queue.retry import RetryPolicy

ACCEPTED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = RetryPolicy(schedule=(5 * MIN, 10 * MIN, 20 * MIN), max_age=2 * 60 * MIN)


@pytest.mark.parametrize(
    ("attempts", "age", "expected_wait"),
    [
        pytest.param(1, 0 * MIN, 5 * MIN, id="first-step-after-first-failure"),
        pytest.param(0, 0 * MIN, 5 * MIN, id="no-count-yet-uses-first-step"),
        pytest.param(2, 5 * MIN, 10 * MIN, id="second-step"),
        pytest.param(3, 15 * MIN, 20 * MIN, id="third-step"),
        pytest.param(4, 35 * MIN, 20 * MIN, id="last-step-repeats"),
        pytest.param(40, 60 * MIN, 20 * MIN, id="last-step-repeats-long-after"),
        pytest.param(5, 110 * MIN, 10 * MIN, id="clipped-to-the-deadline"),
        pytest.param(5, 120 * MIN - timedelta(seconds=1), timedelta(seconds=1),
                     id="one-second-before-the-deadline"),
    ],
)  # fmt: skip
def test_next_attempt_follows_the_schedule_and_never_passes_the_deadline(
    attempts: int, age: timedelta, expected_wait: timedelta
) -> None:
    now = ACCEPTED + age

    when = POLICY.next_attempt(attempts, ACCEPTED, now)

    assert when == now + expected_wait
    assert when <= POLICY.deadline(ACCEPTED)


@pytest.mark.parametrize(
    "age",
    [120 * MIN, 120 * MIN + timedelta(microseconds=1), 3 * 24 * 60 * MIN],
    ids=["at-the-deadline", "just-after", "days-after"],
)
def test_a_deferral_at_or_after_the_deadline_gives_up(age: timedelta) -> None:
    assert POLICY.next_attempt(7, ACCEPTED, ACCEPTED + age) is None


def test_the_deadline_is_acceptance_plus_max_age() -> None:
    assert POLICY.deadline(ACCEPTED) == ACCEPTED + 2 * 60 * MIN


def test_a_walk_through_the_schedule_ends_with_a_try_at_the_deadline() -> None:
    # Failing every time, the tries land on the schedule, then exactly on
    # the deadline, where the next deferral gives up.
    now, attempts, tries = ACCEPTED, 1, [ACCEPTED]
    while (when := POLICY.next_attempt(attempts, ACCEPTED, now)) is not None:
        tries.append(when)
        now, attempts = when, attempts + 1

    minutes = [int((t - ACCEPTED) / MIN) for t in tries]
    assert minutes == [0, 5, 15, 35, 55, 75, 95, 115, 120]


@pytest.mark.parametrize(
    "schedule",
    [(), (timedelta(0),), (5 * MIN, -MIN)],
    ids=["empty", "zero-step", "negative-step"],
)
def test_a_schedule_without_positive_steps_is_rejected(
    schedule: tuple[timedelta, ...],
) -> None:
    with pytest.raises(ValueError, match="step"):
        RetryPolicy(schedule=schedule, max_age=60 * MIN)
