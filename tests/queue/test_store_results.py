"""Campaign summaries, counters, gauges and the webhook outbox, checked
against every backend through `store`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postroom.queue.models import (
    Attempt,
    AttemptResult,
    OutboxEvent,
    Outcome,
    State,
)
from postroom.queue.store import Store
from tests.queue.conftest import Backend, defer, deliver, message, reject

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


def event(n: int, at: datetime = NOW) -> OutboxEvent:
    return OutboxEvent("http://hook.test/", f"e{n}", f'{{"n":{n}}}', at)


async def test_stats_follow_every_state_change_and_deletion(store: Store) -> None:
    first = await store.accept(message("a@x.test", "b@x.test", "c@x.test"), NOW)
    other = await store.accept(message("d@x.test", campaign="survey-2"), NOW)
    a, b, c = first.recipient_ids

    await deliver(store, a, NOW)
    await defer(store, b, NOW, timedelta(minutes=5))
    await reject(store, c, "c@x.test", NOW)
    one = await store.stats("survey-1")
    await store.delete(other.queue_id)
    everything = await store.stats()

    assert (one.sent_ok, one.deferred, one.bounced, one.queued) == (1, 1, 1, 0)
    assert everything.by_state["queued"] == 0
    assert sum(everything.by_state.values()) == 3


async def test_counters_survive_a_reopen_and_a_purge(backend: Backend) -> None:
    store = await backend.open()
    accepted = await store.accept(message("a@x.test", "b@x.test"), NOW)
    for recipient_id in accepted.recipient_ids:
        await deliver(store, recipient_id, NOW)
    await store.close()

    reopened = await backend.open()
    before = await reopened.stats("survey-1")
    await reopened.purge(
        NOW + timedelta(days=500), timedelta(days=7), timedelta(days=400)
    )
    after = await reopened.stats("survey-1")

    assert before.sent_ok == 2
    assert sum(after.by_state.values()) == 0


async def test_campaign_summaries_give_first_and_last_send_and_recipients(
    store: Store,
) -> None:
    await store.accept(message("a@x.test", "b@x.test"), NOW)
    await store.accept(message("c@x.test"), NOW + timedelta(hours=2))
    await store.accept(message("d@x.test", campaign="autumn"), NOW + timedelta(days=1))

    summaries = await store.campaign_summaries()

    assert [(s.campaign, s.recipients) for s in summaries] == [
        ("autumn", 1),
        ("survey-1", 3),
    ]
    assert summaries[1].first_at == NOW
    assert summaries[1].last_at == NOW + timedelta(hours=2)


async def test_gauges_count_states_suppressions_and_the_outbox(store: Store) -> None:
    accepted = await store.accept(message("a@x.test", "b@x.test"), NOW)
    await deliver(store, accepted.recipient_ids[0], NOW)
    await store.suppress("survey-1", "z@x.test", "unsubscribe", NOW)
    await store.suppress("*", "y@x.test", "complaint", NOW)
    await store.add_events([event(1), event(2)])

    gauges = await store.gauges()

    assert gauges.recipients_by_state == {"queued": 1, "delivered": 1}
    assert gauges.suppressions_by_reason == {"unsubscribe": 1, "complaint": 1}
    assert gauges.webhook_outbox == 2


async def test_record_writes_its_events_with_the_state_change(store: Store) -> None:
    [rid] = (await store.accept(message("a@x.test"), NOW)).recipient_ids
    attempt = Attempt(rid, NOW, Outcome.DELIVERED, "mx", 250, "2.0.0", "250 ok")

    await store.record(AttemptResult(attempt, State.DELIVERED, events=(event(1),)))

    [due] = await store.due_events(NOW, 10, LEASE)
    assert (due.event_id, due.body, due.attempts) == ("e1", '{"n":1}', 0)
    assert due.id is not None


async def test_a_leased_event_is_not_handed_out_again_until_its_lease_ends(
    store: Store,
) -> None:
    await store.add_events([event(1)])

    first = await store.due_events(NOW, 10, LEASE)
    again = await store.due_events(NOW + timedelta(seconds=30), 10, LEASE)
    after_lease = await store.due_events(NOW + LEASE, 10, LEASE)

    assert [e.event_id for e in first] == ["e1"]
    assert again == []
    assert [e.event_id for e in after_lease] == ["e1"]


async def test_a_failed_event_waits_and_counts_a_posted_one_is_gone(
    store: Store,
) -> None:
    await store.add_events([event(1), event(2, NOW + timedelta(seconds=1))])
    one, two = await store.due_events(NOW + timedelta(seconds=1), 10, LEASE)
    assert one.id is not None
    assert two.id is not None

    await store.event_failed(one.id, NOW + timedelta(minutes=5), "HTTP 503")
    await store.event_posted(two.id)
    early = await store.due_events(NOW + timedelta(minutes=4), 10, LEASE)
    late = await store.due_events(NOW + timedelta(minutes=5), 10, LEASE)

    assert early == []
    assert [(e.event_id, e.attempts) for e in late] == [("e1", 1)]
    assert (await store.gauges()).webhook_outbox == 1
