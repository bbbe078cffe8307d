"""The reverse-DNS cache of submitting clients."""

from __future__ import annotations

import asyncio

from postroom.relay.peernames import PeerNames, reverse_lookup


class CountingLookup:
    def __init__(self, answer: str | None, delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.asked: list[str] = []

    async def __call__(self, ip: str) -> str | None:
        self.asked.append(ip)
        await asyncio.sleep(self.delay)
        return self.answer


async def test_an_address_is_looked_up_once_while_its_answer_is_kept() -> None:
    lookup = CountingLookup("client.test")
    names = PeerNames(lookup, keep=60)

    first = await names.name("192.0.2.1")
    second = await names.name("192.0.2.1")

    assert (first, second, lookup.asked) == (
        "client.test",
        "client.test",
        ["192.0.2.1"],
    )


async def test_sessions_arriving_during_a_lookup_share_it() -> None:
    lookup = CountingLookup("client.test", delay=0.05)
    names = PeerNames(lookup, keep=60)

    answers = await asyncio.gather(*(names.name("192.0.2.1") for _ in range(5)))

    assert (answers, len(lookup.asked)) == (["client.test"] * 5, 1)


async def test_an_address_without_a_name_is_also_kept() -> None:
    lookup = CountingLookup(None)
    names = PeerNames(lookup, keep=60)

    await names.name("192.0.2.1")
    answer = await names.name("192.0.2.1")

    assert (answer, len(lookup.asked)) == (None, 1)


async def test_an_answer_is_asked_again_once_it_is_too_old() -> None:
    lookup = CountingLookup("client.test")
    names = PeerNames(lookup, keep=0)

    await names.name("192.0.2.1")
    await names.name("192.0.2.1")

    assert len(lookup.asked) == 2


async def test_the_cache_holds_at_most_its_size_in_addresses() -> None:
    lookup = CountingLookup("client.test")
    names = PeerNames(lookup, keep=60, size=2)

    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"):
        await names.name(ip)

    assert lookup.asked == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"]


async def test_an_address_no_resolver_names_has_no_name() -> None:
    # 192.0.2.0/24 is reserved for documentation (RFC 5737): no PTR record.
    assert await reverse_lookup("192.0.2.1") is None
