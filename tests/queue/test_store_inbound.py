"""The store's suppression-list upkeep and kept inbound reports, checked
against every backend through `store`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from postroom.clock import ManualClock
from postroom.errors import NotFound
from postroom.queue.models import NewInboundReport, State, Suppression
from postroom.queue.store import GLOBAL_SCOPE, Store
from tests.queue.conftest import Backend, message

REPORT = NewInboundReport(
    peer="192.0.2.1",
    mail_from="",
    rcpts=("bounces+abc@bounces.test", "postmaster@bounces.test"),
    raw=b"Subject: Undelivered\r\n\r\nsorry\r\n",
)


async def test_suppressions_are_listed_by_scope_then_address(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    await store.suppress("spring", "B@x.example", "unknown_user", now)
    await store.suppress("spring", "a@x.example", "unsubscribe", now)
    await store.suppress(GLOBAL_SCOPE, "c@x.example", "manual", now)

    everything = await store.suppressions()
    spring = await store.suppressions("spring")

    assert [(s.scope, s.address) for s in everything] == [
        ("*", "c@x.example"),
        ("spring", "a@x.example"),
        ("spring", "b@x.example"),
    ]
    assert [s.reason for s in spring] == ["unsubscribe", "unknown_user"]
    assert spring[0].created_at == now
    assert len(await store.suppressions(limit=1)) == 1


async def test_unsuppress_removes_one_entry_whatever_the_case(
    store: Store, clock: ManualClock
) -> None:
    await store.suppress("spring", "a@x.example", "manual", clock.now())
    await store.suppress("autumn", "a@x.example", "manual", clock.now())

    removed = await store.unsuppress("spring", "A@X.example")
    again = await store.unsuppress("spring", "a@x.example")

    assert (removed, again) == (True, False)
    assert not await store.is_suppressed("spring", "a@x.example")
    assert await store.is_suppressed("autumn", "a@x.example")


async def test_an_unsuppressed_address_is_delivered_to_again(
    store: Store, clock: ManualClock
) -> None:
    await store.suppress("survey-1", "a@x.example", "unknown_user", clock.now())
    await store.unsuppress("survey-1", "a@x.example")

    accepted = await store.accept(message("a@x.example"), clock.now())

    assert accepted.suppressed == ()
    [row] = await store.recipients()
    assert row.state is State.QUEUED


async def test_suppress_many_counts_only_new_entries_and_keeps_the_first_reason(
    store: Store, clock: ManualClock
) -> None:
    earlier = clock.now() - timedelta(days=3)
    await store.suppress("spring", "a@x.example", "complaint", clock.now())
    entries = [
        Suppression("spring", "a@x.example", "import", earlier),
        Suppression("spring", "b@x.example", "import", earlier),
        Suppression(GLOBAL_SCOPE, "c@x.example", "import", earlier),
    ]

    added = await store.suppress_many(entries)

    assert added == 2
    listed = {(s.scope, s.address): s for s in await store.suppressions()}
    assert listed["spring", "a@x.example"].reason == "complaint"
    assert listed["spring", "b@x.example"].created_at == earlier
    assert await store.is_suppressed("any-campaign", "c@x.example")


async def test_an_inbound_report_is_kept_pending_then_settled(
    store: Store, clock: ManualClock
) -> None:
    accepted = await store.accept(message("a@x.example"), clock.now())

    report_id = await store.add_inbound(REPORT, clock.now())
    [pending] = await store.inbound_reports(outcome="pending")
    await store.settle_inbound(
        report_id, "dsn", "bounced", accepted.recipient_ids[0], "a@x.example: 5.1.1"
    )

    [settled] = await store.inbound_reports()
    assert pending.rcpts == REPORT.rcpts
    assert pending.size == len(REPORT.raw)
    assert (settled.kind, settled.outcome) == ("dsn", "bounced")
    assert settled.recipient_id == accepted.recipient_ids[0]
    assert settled.detail == "a@x.example: 5.1.1"
    assert await store.inbound_reports(outcome="pending") == []
    assert await store.load_inbound_raw(report_id) == REPORT.raw


async def test_settling_names_no_recipient_that_does_not_exist(
    store: Store, clock: ManualClock
) -> None:
    report_id = await store.add_inbound(REPORT, clock.now())

    await store.settle_inbound(report_id, "dsn", "unmatched", 12345, "")

    [settled] = await store.inbound_reports()
    assert settled.recipient_id is None
    with pytest.raises(NotFound):
        await store.load_inbound_raw(report_id + 1)


async def test_recipients_are_found_by_the_message_id_of_their_message(
    store: Store, clock: ManualClock
) -> None:
    accepted = await store.accept(message("a@x.example", "b@x.example"), clock.now())

    found = await store.find_by_message_id("<m1@panel.example>")
    unknown = await store.find_by_message_id("<other@panel.example>")

    assert [r.id for r in found] == list(accepted.recipient_ids)
    assert unknown == []


async def test_inbound_reports_come_oldest_first_or_newest_first(
    store: Store, clock: ManualClock
) -> None:
    ids = [await store.add_inbound(REPORT, clock.now()) for _ in range(3)]

    oldest = await store.inbound_reports(limit=2)
    newest = await store.inbound_reports(limit=2, newest_first=True)

    assert [r.id for r in oldest] == ids[:2]
    assert [r.id for r in newest] == [ids[2], ids[1]]


async def test_old_inbound_reports_are_purged_with_the_records(
    backend: Backend, clock: ManualClock
) -> None:
    store = await backend.open()
    await store.add_inbound(REPORT, clock.now())

    counts = await store.purge(
        clock.now() + timedelta(days=2), timedelta(days=1), timedelta(days=1)
    )

    assert counts.bounces == 1
    assert await store.inbound_reports() == []


async def test_one_kept_report_can_be_read_by_its_id(
    store: Store, clock: ManualClock
) -> None:
    first = await store.add_inbound(REPORT, clock.now())
    second = await store.add_inbound(REPORT, clock.now())

    [found] = await store.inbound_reports(report_id=second)

    assert found.id == second != first
    assert await store.inbound_reports(report_id=second + 100) == []


async def test_the_outcome_filter_matches_one_of_several_joined_outcomes(
    store: Store, clock: ManualClock
) -> None:
    both = await store.add_inbound(REPORT, clock.now())
    forwarded = await store.add_inbound(REPORT, clock.now())
    bounced = await store.add_inbound(REPORT, clock.now())
    await store.settle_inbound(both, "dsn", "forwarded,bounced", None, "")
    await store.settle_inbound(forwarded, None, "forwarded", None, "")
    await store.settle_inbound(bounced, "dsn", "bounced", None, "")

    found = await store.inbound_reports(outcome="bounced")
    pending = await store.inbound_reports(outcome="pending")
    prefix = await store.inbound_reports(outcome="bounce")

    assert [r.id for r in found] == [both, bounced]
    assert pending == []
    assert prefix == []


async def test_a_recipient_complains_about_its_message_once(
    store: Store, clock: ManualClock
) -> None:
    accepted = await store.accept(message("a@x.example"), clock.now())
    recipient_id = accepted.recipient_ids[0]

    marks = await asyncio.gather(
        *(store.mark_complaint(recipient_id, clock.now()) for _ in range(6))
    )

    assert sorted(marks) == [False] * 5 + [True]
    assert await store.mark_complaint(recipient_id + 1000, clock.now()) is False
