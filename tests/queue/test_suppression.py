"""The suppression policy: which failures suppress, and on which list; and
the delivery engine applying it to synchronous refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from postroom.clock import ManualClock
from postroom.config import Config
from postroom.config.schema import SuppressionConfig
from postroom.dsn import Category
from postroom.queue.models import BounceRecord, NewMessage, NewRecipient, State
from postroom.queue.open import open_store
from postroom.queue.store import GLOBAL_SCOPE, Store
from postroom.queue.suppression import SuppressionPolicy, apply_policy
from postroom.relay.worker import DeliveryEngine
from tests.peers.sink import Sink

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def bounce(category: str, action: str = "failed") -> BounceRecord:
    return BounceRecord(
        recipient_id=1,
        address="a@x.example",
        campaign="spring",
        at=T0,
        action=action,
        code=550,
        status="5.1.1",
        category=category,
        hard=True,
        diagnostic="550 5.1.1 no such user",
    )


@pytest.mark.parametrize(
    ("category", "suppressed"),
    [
        (Category.UNKNOWN_USER, True),
        (Category.UNKNOWN_DOMAIN, True),
        (Category.MAILBOX_GONE, True),
        (Category.COMPLAINT, True),
        (Category.BLOCKED, False),  # the sender's reputation
        (Category.POLICY, False),
        (Category.MAILBOX_FULL, False),
        (Category.EXPIRED, False),
        (Category.SPAM, False),
    ],
)
def test_by_default_only_the_addresses_own_faults_and_complaints_suppress(
    category: Category, suppressed: bool
) -> None:
    policy = SuppressionPolicy(SuppressionConfig())

    assert policy.suppresses(bounce(category)) is suppressed


def test_a_delay_never_suppresses() -> None:
    policy = SuppressionPolicy(SuppressionConfig())

    assert not policy.suppresses(bounce(Category.UNKNOWN_USER, action="delayed"))


def test_the_table_can_be_changed_per_category() -> None:
    config = SuppressionConfig.model_validate(
        {"policy": {"mailbox_full": True, "unknown_user": False}}
    )
    policy = SuppressionPolicy(config)

    assert policy.suppresses(bounce(Category.MAILBOX_FULL))
    assert not policy.suppresses(bounce(Category.UNKNOWN_USER))
    assert policy.suppresses(bounce(Category.UNKNOWN_DOMAIN))  # default kept


@pytest.mark.parametrize(
    ("scope", "expected"), [("campaign", "spring"), ("global", "*")]
)
def test_the_scope_is_the_campaign_or_the_global_list(
    scope: str, expected: str
) -> None:
    policy = SuppressionPolicy(SuppressionConfig.model_validate({"scope": scope}))

    assert policy.scope("spring") == expected


@pytest.fixture
async def store(config: Config) -> AsyncIterator[Store]:
    opened = open_store(config)
    await opened.open()
    yield opened
    await opened.close()


async def test_apply_policy_puts_a_hard_failure_on_the_global_list(
    store: Store,
) -> None:
    policy = SuppressionPolicy(SuppressionConfig.model_validate({"scope": "global"}))

    scope = await apply_policy(store, policy, bounce(Category.UNKNOWN_USER), T0)
    skipped = await apply_policy(store, policy, bounce(Category.BLOCKED), T0)

    assert (scope, skipped) == (GLOBAL_SCOPE, None)
    assert await store.is_suppressed("autumn", "a@x.example")


async def _send(store: Store, clock: ManualClock, campaign: str, *to: str) -> None:
    await store.accept(
        NewMessage(
            mail_from="surveys@example.org",
            recipients=tuple(NewRecipient(a) for a in to),
            raw=b"Subject: hi\r\n\r\nbody\r\n",
            campaign=campaign,
            submitted_by=None,
            client_address="127.0.0.1",
        ),
        clock.now(),
    )


async def test_a_synchronous_550_5_1_1_suppresses_the_address_for_its_campaign(
    config: Config, store: Store, clock: ManualClock, sink: Sink
) -> None:
    port = await sink.listen()
    routed = config.model_copy(
        update={
            "delivery": config.delivery.model_copy(
                update={"routes": {"example.net": f"127.0.0.1:{port}"}}
            )
        }
    )
    engine = DeliveryEngine(routed, store, clock)
    await _send(store, clock, "spring", "nouser@example.net", "full@example.net")

    try:
        await engine.run_once()
        await _send(store, clock, "spring", "nouser@example.net")
        await _send(store, clock, "autumn", "nouser@example.net")
        await engine.run_once()
    finally:
        await engine.stop()

    states = [(r.campaign, r.address, r.state) for r in await store.recipients()]
    assert states == [
        ("spring", "nouser@example.net", State.BOUNCED),
        ("spring", "full@example.net", State.BOUNCED),
        ("spring", "nouser@example.net", State.SUPPRESSED),
        ("autumn", "nouser@example.net", State.BOUNCED),
    ]
    # 552 "over quota" is the moment's problem, not the address's.
    assert [(s.scope, s.address) for s in await store.suppressions()] == [
        ("autumn", "nouser@example.net"),
        ("spring", "nouser@example.net"),
    ]
