"""Results pages, metrics and webhooks end to end, in one process.

The relay runs with a movable clock and delivers to the scripted sink;
the campaign page is read by a real headless Chromium, /metrics by the
Prometheus parser, and webhook events by an HTTP receiver on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from postroom.app import Relay
from postroom.clock import ManualClock
from postroom.queue.models import State
from postroom.relay.passwords import hash_password
from postroom.relay.unsubscribe import unsubscribe_signer
from postroom.webhooks.events import SIGNATURE_HEADER, verify
from tests.peers.inprocess import loopback_settings, start_with_file, submit, until
from tests.peers.sink import Sink

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CAMPAIGN = "spring-survey"
SECRET = "a-webhook-secret-of-some-length"
# Four taken, two deferred, one refused: the numbers the page must show.
ADDRESSES = [
    *(f"Ada Taker{i} <ok+{i}@example.net>" for i in range(4)),
    *(f"Bob Later{i} <later+{i}@example.net>" for i in range(2)),
    "Nora User <nouser@example.net>",
]

RelayFactory = Callable[..., Awaitable[tuple[Relay, Path]]]


@pytest.fixture
async def start_relay(
    tmp_path: Path, sink: Sink, clock: ManualClock
) -> AsyncIterator[RelayFactory]:
    """Starts the relay with ``extra`` settings merged in; yields the relay
    and its config file, and stops it at the end."""
    sink_port = await sink.listen()
    started: list[Relay] = []

    async def start(**extra: Any) -> tuple[Relay, Path]:
        settings = loopback_settings(tmp_path, sink_port, **extra)
        relay, config_file = await start_with_file(tmp_path, settings, clock)
        started.append(relay)
        return relay, config_file

    yield start
    for relay in started:
        await relay.stop()


def invitation(addresses: list[str] = ADDRESSES) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = ", ".join(addresses)
    message["Subject"] = "Your invitation"
    message["X-Campaign-ID"] = CAMPAIGN
    message.set_content("Please take our survey.")
    return message


async def send_and_wait(relay: Relay, addresses: list[str] = ADDRESSES) -> None:
    """Submit one invitation and wait until each recipient was tried once."""
    before = len(await relay.store.recipients())
    await asyncio.to_thread(submit, relay.submission.port, invitation(addresses))

    async def all_tried() -> bool:
        rows = await relay.store.recipients()
        return len(rows) == before + len(addresses) and all(
            r.attempts >= 1 or r.state is State.SUPPRESSED for r in rows
        )

    await until(all_tried)


async def postroom(config_file: Path, *args: str) -> bytes:
    """The CLI's standard output, run without blocking the relay's loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "postroom", *args, "--config", str(config_file),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return out


def base(relay: Relay) -> str:
    assert relay.web is not None
    return f"http://127.0.0.1:{relay.web.port}"


async def get(url: str, **kwargs: Any) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as r:
        return r.status, await r.read()


# -- the campaign page in a browser ----------------------------------------


async def chromium(*args: str, profile: Path) -> bytes:
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--window-size=1200,1000", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return out


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
)
@pytest.mark.timeout(120)
async def test_the_campaign_page_shows_the_run_in_two_charts_and_its_csv_is_the_export(
    start_relay: RelayFactory, tmp_path: Path
) -> None:
    relay, config_file = await start_relay()
    await send_and_wait(relay)
    page = f"{base(relay)}/campaigns/{CAMPAIGN}"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "campaign-page.png"
    screenshot.unlink(missing_ok=True)

    dom = (await chromium("--dump-dom", page, profile=tmp_path / "p1")).decode()
    await chromium(f"--screenshot={screenshot}", page, profile=tmp_path / "p2")
    status, downloaded = await get(f"{page}/bounces.csv")
    _, deferrals = await get(f"{page}/deferrals.csv")
    exported = await postroom(config_file, "export", "bounces", "--campaign", CAMPAIGN)
    exported_deferrals = await postroom(
        config_file, "export", "deferrals", "--campaign", CAMPAIGN
    )

    assert f"Campaign {CAMPAIGN}" in dom
    assert "<td>Sent OK</td><td>4</td><td>57.1%</td>" in _rows(dom)
    assert "<td>Deferred</td><td>2</td><td>28.6%</td>" in _rows(dom)
    assert "<td>Bounced</td><td>1</td><td>14.3%</td>" in _rows(dom)
    assert "<td>Still subscribed</td><td>7</td><td>100.0%</td>" in _rows(dom)
    assert dom.count('role="img"') == 2
    assert dom.count("<path") == 3  # three delivery slices
    assert "<circle" in dom  # the subscription chart is one full slice
    assert _png_size(screenshot) == (1200, 1000)
    assert screenshot.stat().st_size > 10_000
    assert status == 200
    assert downloaded == exported
    assert b"nouser@example.net,User,Nora,550,5,1,1," in downloaded
    assert deferrals == exported_deferrals
    assert deferrals.count(b"later+") == 2


def _rows(dom: str) -> str:
    """The page's table rows with the colour keys left out."""
    import re

    return re.sub(r'<span class="key"[^>]*></span>', "", dom)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- /metrics ---------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def counters(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        if family.type in ("counter", "histogram"):
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    found[key] = sample.value
    return found


async def test_metrics_parse_match_postroom_stats_and_counters_only_grow(
    start_relay: RelayFactory,
) -> None:
    relay, config_file = await start_relay()
    await send_and_wait(relay)

    _, first = await get(f"{base(relay)}/metrics")
    stats = json.loads(await postroom(config_file, "stats", "--json"))
    before = counters(first.decode())
    await send_and_wait(relay, ["Ada <ok+9@example.net>", "N <nouser+2@example.net>"])
    after: dict[Any, float] = {}

    async def counted() -> bool:
        # The worker counts an attempt just after the store has it.
        nonlocal after
        _, second = await get(f"{base(relay)}/metrics")
        after = counters(second.decode())
        return after.get(DELIVERED, 0) > before.get(DELIVERED, 0) and after.get(
            UNKNOWN_USER, 0
        ) > before.get(UNKNOWN_USER, 0)

    await until(counted)

    gauges = samples(first.decode())
    assert (
        gauges[("postroom_recipients", (("state", "delivered"),))] == stats["sent_ok"]
    )
    assert (
        gauges[("postroom_recipients", (("state", "deferred"),))] == stats["deferred"]
    )
    assert gauges[("postroom_recipients", (("state", "bounced"),))] == stats["bounced"]
    assert gauges[("postroom_recipients", (("state", "queued"),))] == stats["queued"]
    assert ("postroom_webhook_outbox", ()) in gauges
    assert any(name == "postroom_build_info" for name, _ in gauges)
    assert all(after.get(key, -1) >= value for key, value in before.items())


DELIVERED = (
    "postroom_deliveries_total",
    (("category", "none"), ("result", "delivered")),
)
UNKNOWN_USER = (
    "postroom_bounce_records_total",
    (("category", "unknown_user"), ("source", "smtp")),
)


# -- webhooks ---------------------------------------------------------------


class Receiver:
    """An HTTP endpoint on loopback that keeps every post, and can go down."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _take(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    def events(self) -> list[dict[str, Any]]:
        """The posted events whose signature checks out."""
        good = []
        for headers, body in self.posts:
            if verify(SECRET, headers[SIGNATURE_HEADER], body) is not None:
                good.append(json.loads(body))
        return good


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def hook(receiver: Receiver) -> dict[str, Any]:
    return {"url": f"http://127.0.0.1:{receiver.port}/hook", "secret": SECRET}


async def test_each_state_change_is_posted_once_signed(
    start_relay: RelayFactory, receiver: Receiver
) -> None:
    relay, _ = await start_relay(webhooks=[hook(receiver)])

    await send_and_wait(relay)

    async def all_posted() -> bool:
        return len(receiver.posts) >= len(ADDRESSES)

    await until(all_posted)
    events = receiver.events()
    assert len(events) == len(receiver.posts) == len(ADDRESSES)
    assert (
        sorted(e["type"] for e in events)
        == ["bounced"] + ["deferred"] * 2 + ["delivered"] * 4
    )
    assert len({e["id"] for e in events}) == len(events)
    [bounced] = [e for e in events if e["type"] == "bounced"]
    assert bounced["recipient"] == "nouser@example.net"
    assert bounced["campaign"] == CAMPAIGN
    assert (bounced["code"], bounced["status"]) == (550, "5.1.1")
    assert bounced["category"] == "unknown_user"
    assert bounced["queue_id"]
    assert verify("another-secret-entirely", *_first_post(receiver)) is None


def _first_post(receiver: Receiver) -> tuple[str, bytes]:
    headers, body = receiver.posts[0]
    return headers[SIGNATURE_HEADER], body


async def test_events_wait_in_the_outbox_while_the_endpoint_is_down(
    start_relay: RelayFactory, receiver: Receiver, clock: ManualClock
) -> None:
    relay, _ = await start_relay(webhooks=[hook(receiver)])
    await receiver.stop()

    await send_and_wait(relay, ["Ada <ok+1@example.net>", "Nora <nouser@example.net>"])

    async def tried_and_waiting() -> bool:
        waiting = (await relay.store.gauges()).webhook_outbox
        due = await relay.store.due_events(clock.now(), 10, timedelta(0))
        return waiting == 2 and not due  # both failed once, due later

    await until(tried_and_waiting)
    await receiver.start()
    assert relay.webhooks is not None
    relay.webhooks.wake()
    await asyncio.sleep(0.2)  # a round that must post nothing: none is due
    assert receiver.posts == []

    clock.advance(timedelta(minutes=1))
    relay.webhooks.wake()

    async def arrived() -> bool:
        return len(receiver.posts) == 2

    await until(arrived)
    assert sorted(e["type"] for e in receiver.events()) == ["bounced", "delivered"]
    assert (await relay.store.gauges()).webhook_outbox == 0


# -- credentials ------------------------------------------------------------


async def test_pages_downloads_and_metrics_need_credentials_but_unsubscribe_does_not(
    start_relay: RelayFactory,
) -> None:
    # Started under a fresh structlog set-up: a logger first used while an
    # earlier test's caching configuration is in force would stay bound to
    # it and hide its events from later tests that capture them.
    structlog.reset_defaults()
    with structlog.testing.capture_logs() as events:
        relay, _ = await start_relay(
            web={"listen": "127.0.0.1:0", "users": {"ops": hash_password("s3cret")}},
            unsubscribe={"base_url": "http://127.0.0.1/unsubscribe"},
        )
    assert any(e["event"] == "unsubscribe.insecure_url" for e in events)
    await send_and_wait(relay, ["Ada <ok+1@example.net>"])
    [row] = await relay.store.recipients()
    token = (await unsubscribe_signer(relay.store)).mint(row.id)
    good = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"ops:guess").decode()
    paths = [
        "/campaigns",
        f"/campaigns/{CAMPAIGN}",
        f"/campaigns/{CAMPAIGN}/bounces.csv",
        f"/campaigns/{CAMPAIGN}/deferrals.csv",
        "/metrics",
    ]

    anonymous = [(await get(base(relay) + p))[0] for p in paths]
    wrong = [
        (await get(base(relay) + p, headers={"Authorization": bad}))[0] for p in paths
    ]
    right = [
        (await get(base(relay) + p, headers={"Authorization": good}))[0] for p in paths
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base(relay)}/unsubscribe/{token}",
            data={"List-Unsubscribe": "One-Click"},
        ) as response,
    ):
        unsubscribed = response.status

    assert anonymous == [401] * len(paths)
    assert wrong == [401] * len(paths)
    assert right == [200] * len(paths)
    assert unsubscribed == 200
    assert await relay.store.is_suppressed(CAMPAIGN, "ok+1@example.net")


async def test_the_web_listener_is_off_when_neither_results_nor_unsubscribe_is_on(
    start_relay: RelayFactory,
) -> None:
    relay, _ = await start_relay(web={"listen": "127.0.0.1:0", "results": False})

    assert relay.web is None


async def test_an_unknown_campaign_is_not_found(start_relay: RelayFactory) -> None:
    relay, _ = await start_relay()

    status, _ = await get(f"{base(relay)}/campaigns/nothing-here")
    listing_status, listing = await get(f"{base(relay)}/campaigns")

    assert status == 404
    assert listing_status == 200
    assert b"No campaigns yet." in listing


async def test_a_one_click_unsubscribe_is_posted_once_as_an_event(
    start_relay: RelayFactory, receiver: Receiver
) -> None:
    structlog.reset_defaults()  # see the credentials test above
    with structlog.testing.capture_logs():
        relay, _ = await start_relay(
            webhooks=[{**hook(receiver), "events": ["unsubscribed"]}],
            unsubscribe={"base_url": "http://127.0.0.1/unsubscribe"},
        )
    await send_and_wait(relay, ["Ada <ok+1@example.net>"])
    [row] = await relay.store.recipients()
    token = (await unsubscribe_signer(relay.store)).mint(row.id)

    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # the second click changes nothing
            async with session.post(
                f"{base(relay)}/unsubscribe/{token}",
                data={"List-Unsubscribe": "One-Click"},
            ) as response:
                assert response.status == 200

    async def posted() -> bool:
        return len(receiver.posts) >= 1

    await until(posted)
    await asyncio.sleep(0.2)  # room for a wrong second event to arrive
    [event] = receiver.events()
    assert event["type"] == "unsubscribed"
    assert event["via"] == "one-click"
    assert event["recipient"] == "ok+1@example.net"
