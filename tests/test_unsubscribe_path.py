"""One-click unsubscribe and DKIM end to end, in one process.

A real SMTP client submits to the running relay; the relay stamps the
unsubscribe headers, signs with a key made by ``postroom dkim keygen``,
and delivers to a sink on loopback. dkimpy verifies the copy against the
public key served by a real DNS server on loopback, and an HTTP client
posts the one-click request to the relay's web listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, MutableMapping
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiohttp
import dkim
import pytest
import structlog
import yaml

from postroom.app import Relay
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.queue.models import State
from tests.peers.dkimdns import txt_lookup
from tests.peers.dnsserver import DnsServer
from tests.peers.inprocess import loopback_settings, submit, until
from tests.peers.sink import Sink

BASE_PATH = "/unsubscribe"


@contextlib.contextmanager
def all_events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event logged inside, whatever level an earlier test
    configured (the CLI's commands set ``warning`` when run in-process)."""
    structlog.reset_defaults()
    with structlog.testing.capture_logs() as events:
        yield events


def keygen(out: Path, *extra: str) -> tuple[str, str]:
    """Run ``postroom dkim keygen``; its record name and TXT value."""
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "dkim", "keygen",
         "--domain", "example.org", "--selector", "s1", "--out", str(out), *extra],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    name, value = result.stdout.splitlines()
    return name, value


@pytest.fixture
async def relay(
    tmp_path: Path, sink: Sink, clock: ManualClock, dns_server: DnsServer
) -> AsyncIterator[Relay]:
    """The relay with unsubscribe headers and DKIM on, delivering to the sink."""
    name, value = keygen(tmp_path / "s1.key")
    dns_server.add(name, "TXT", value)
    settings = loopback_settings(
        tmp_path,
        await sink.listen(),
        unsubscribe={
            "base_url": f"http://127.0.0.1{BASE_PATH}",
            "mailto_domain": "bounces.example.org",
        },
        dkim=[
            {"domain": "example.org", "selector": "s1", "key": str(tmp_path / "s1.key")}
        ],
    )
    with all_events() as events:
        running = Relay(parse_config(yaml.safe_dump(settings)), clock=clock)
        await running.start()
    assert any(e["event"] == "unsubscribe.insecure_url" for e in events)
    yield running
    await running.stop()


def invitation(
    campaign: str = "spring-survey", to: str = "ok@example.net"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = f"Ada Lovelace <{to}>"
    message["Subject"] = "Your invitation"
    message["Message-ID"] = "<inv-1@example.org>"
    message["X-Campaign-ID"] = campaign
    message.set_content("Please take our survey.")
    return message


def submit_to(port: int, message: EmailMessage, rcpt: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message, to_addrs=[rcpt])


async def deliver(relay: Relay, sink: Sink, message: EmailMessage) -> bytes:
    """Submit ``message`` to ok@example.net; the copy the sink received."""
    before = len(sink.messages)
    await asyncio.to_thread(submit_to, relay.submission.port, message, "ok@example.net")

    async def arrived() -> bool:
        return len(sink.messages) > before

    await until(arrived)
    return sink.messages[-1].data


def unsubscribe_url(raw: bytes) -> str:
    header = BytesParser(policy=default_policy).parsebytes(raw)["List-Unsubscribe"]
    [url] = re.findall(r"<(http[^>]+)>", str(header))
    return url


def local_url(relay: Relay, url: str) -> str:
    """``url`` as the site's TLS proxy would forward it to the web listener."""
    assert relay.web is not None
    path = url.split("127.0.0.1", 1)[1]
    return f"http://127.0.0.1:{relay.web.port}{path}"


async def test_a_copy_carries_both_unsubscribe_headers_under_a_valid_signature(
    relay: Relay, sink: Sink, dns_server: DnsServer
) -> None:
    raw = await deliver(relay, sink, invitation())

    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    signature = dkim.util.parse_tag_value(
        re.sub(
            rb"\s+", b"", raw.split(b"DKIM-Signature:", 1)[1].split(b"\r\nReceived")[0]
        )
    )
    verified = await asyncio.to_thread(
        dkim.verify, raw, dnsfunc=txt_lookup(dns_server.port)
    )

    assert raw.startswith(b"DKIM-Signature: ")
    assert verified
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        r"<mailto:unsubscribe\+[a-z2-7]+@bounces\.example\.org>,\s*"
        r"<http://127\.0\.0\.1/unsubscribe/[a-z2-7]+>",
        str(parsed["List-Unsubscribe"]).strip(),
    )
    signed = signature[b"h"].split(b":")
    assert b"list-unsubscribe" in signed
    assert b"list-unsubscribe-post" in signed
    assert signed.count(b"from") == 2
    assert signature[b"d"] == b"example.org"


async def test_one_click_post_suppresses_the_recipient_for_that_campaign_only(
    relay: Relay, sink: Sink
) -> None:
    raw = await deliver(relay, sink, invitation())
    url = local_url(relay, unsubscribe_url(raw))

    with all_events() as events:
        async with aiohttp.ClientSession() as client:
            async with client.post(
                url, data={"List-Unsubscribe": "One-Click"}
            ) as response:
                status, cookies = response.status, response.cookies
            async with client.post(
                url, data={"List-Unsubscribe": "One-Click"}
            ) as again:
                second = again.status
    delivered = len(sink.messages)
    await asyncio.to_thread(submit, relay.submission.port, invitation())
    await deliver(relay, sink, invitation("autumn-survey"))

    async def recorded() -> bool:
        rows = await relay.store.recipients(campaign="autumn-survey")
        return rows[0].state is State.DELIVERED

    await until(recorded)
    rows = [r for r in await relay.store.recipients() if r.address == "ok@example.net"]
    stats = await relay.store.stats("spring-survey")

    assert status == 200
    assert second == 200  # idempotent
    assert not cookies
    assert [e["event"] for e in events].count("unsubscribe.accepted") == 2
    assert len(sink.messages) == delivered + 1
    assert sink.messages[-1].data.count(b"X-Campaign-ID") == 0
    assert [(r.campaign, r.state, r.attempts) for r in rows] == [
        ("spring-survey", State.DELIVERED, 1),
        ("spring-survey", State.SUPPRESSED, 0),
        ("autumn-survey", State.DELIVERED, 1),
    ]
    assert stats.unsubscribed == 1


async def test_a_multipart_one_click_post_also_unsubscribes(
    relay: Relay, sink: Sink
) -> None:
    raw = await deliver(relay, sink, invitation())
    url = local_url(relay, unsubscribe_url(raw))
    form = aiohttp.FormData()
    form.add_field("List-Unsubscribe", "One-Click")
    form.add_field("unused", b"x", filename="x.bin")  # forces multipart/form-data

    async with (
        aiohttp.ClientSession() as client,
        client.post(url, data=form) as response,
    ):
        status = response.status

    assert status == 200
    assert await relay.store.is_suppressed("spring-survey", "ok@example.net")


async def test_get_shows_a_confirmation_page_and_changes_nothing(
    relay: Relay, sink: Sink
) -> None:
    raw = await deliver(relay, sink, invitation())
    url = local_url(relay, unsubscribe_url(raw))

    async with aiohttp.ClientSession() as client, client.get(url) as response:
        status, page = response.status, await response.text()

    assert status == 200
    assert '<form method="post"' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert not await relay.store.is_suppressed("spring-survey", "ok@example.net")
    assert (await relay.store.stats()).unsubscribed == 0


@pytest.mark.parametrize("change", ["one character", "truncated", "foreign"])
async def test_an_altered_token_is_refused_and_changes_nothing(
    relay: Relay, sink: Sink, change: str
) -> None:
    raw = await deliver(relay, sink, invitation())
    url = local_url(relay, unsubscribe_url(raw))
    token = url.rsplit("/", 1)[1]
    if change == "one character":
        bad = token[:-3] + ("a" if token[-3] != "a" else "b") + token[-2:]
    elif change == "truncated":
        bad = token[:-4]
    else:
        bad = "mfrggzdfmztwq2lknnwg23tpobyxe43u"  # well-formed base32, not ours
    bad_url = url.rsplit("/", 1)[0] + "/" + bad

    async with aiohttp.ClientSession() as client:
        async with client.post(bad_url, data={"List-Unsubscribe": "One-Click"}) as post:
            post_status, post_body = post.status, await post.text()
        async with client.get(bad_url) as get:
            get_status = get.status

    assert 400 <= post_status < 500
    assert 400 <= get_status < 500
    assert "ok@example.net" not in post_body
    assert not await relay.store.is_suppressed("spring-survey", "ok@example.net")


async def test_a_post_without_the_one_click_body_is_refused(
    relay: Relay, sink: Sink
) -> None:
    raw = await deliver(relay, sink, invitation())
    url = local_url(relay, unsubscribe_url(raw))

    async with aiohttp.ClientSession() as client, client.post(url, data={}) as response:
        status = response.status

    assert status == 400
    assert not await relay.store.is_suppressed("spring-survey", "ok@example.net")


async def test_a_signed_copy_verifies_after_any_long_or_non_ascii_header(
    relay: Relay, sink: Sink, dns_server: DnsServer
) -> None:
    message = invitation()
    del message["From"], message["To"], message["Subject"]
    message["From"] = "Zoë Ångström-Müller <surveys@example.org>"
    message["To"] = ", ".join(
        f"Person Number {n} <ok+{n}@example.net>" for n in range(40)
    )
    message["Subject"] = "Ihre Einladung zur Umfrage über Qualität " * 4

    raw = await deliver(relay, sink, message)
    verified = await asyncio.to_thread(
        dkim.verify, raw, dnsfunc=txt_lookup(dns_server.port)
    )

    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert verified
