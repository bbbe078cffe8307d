"""Stores under test, behind the `Store` interface.

Each backend is a `Backend` that can open (and, after a close, reopen) a
store on the same storage; the `store` fixture is parametrised over every
backend so that one suite checks them all. `nodes` is for what only the
PostgreSQL store promises: several stores on one database at once. The
functions at the end build the messages, attempts and records the tests
store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from postroom.queue.models import (
    Attempt,
    AttemptResult,
    BounceRecord,
    NewMessage,
    NewRecipient,
    Outcome,
    State,
)
from postroom.queue.postgres import PostgresStore
from postroom.queue.sqlite import SqliteStore
from postroom.queue.store import Store
from tests.peers import postgres


@dataclass
class Backend:
    """Opens stores on one storage location and closes them at the end."""

    name: str
    path: Path
    url: str | None = None  # the database of the "postgresql" backend
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store: Store
        if self.url is not None:
            store = PostgresStore(self.url)
        else:
            store = SqliteStore(self.path)
        await store.open()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """SQLite in ``tmp_path``, or a fresh PostgreSQL database of its own."""
    url = None
    if request.param == "postgresql":
        problem = await postgres.shared_server_problem()
        if problem is not None:
            pytest.skip(problem)
        url = await postgres.create_database()
    chosen = Backend(request.param, tmp_path / "queue.sqlite3", url)
    yield chosen
    await chosen.close_all()
    if url is not None:
        await postgres.drop_database(url)


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[PostgresStore]]:
    """Three stores on one database, as three nodes would open it."""
    stores = [PostgresStore(pg_url, holder=f"node-{n}") for n in range(3)]
    await asyncio.gather(*(store.open() for store in stores))
    yield stores
    for store in stores:
        await store.close()


def message(
    *addresses: str,
    campaign: str = "survey-1",
    raw: bytes = b"Subject: hello\r\n\r\nbody\r\n",
    names: dict[str, str] | None = None,
) -> NewMessage:
    """A message to ``addresses``; ``names`` gives display names."""
    names = names or {}
    return NewMessage(
        mail_from="invite@panel.example",
        recipients=tuple(NewRecipient(a, names.get(a, "")) for a in addresses),
        raw=raw,
        campaign=campaign,
        submitted_by="panel",
        client_address="127.0.0.1",
        message_id="<m1@panel.example>",
    )


def attempt(
    recipient_id: int,
    at: datetime,
    outcome: Outcome,
    code: int | None,
    status: str | None,
    text: str = "",
) -> Attempt:
    return Attempt(recipient_id, at, outcome, "mx.example.net", code, status, text)


def bounce(
    recipient_id: int | None, address: str, at: datetime, campaign: str | None
) -> BounceRecord:
    return BounceRecord(
        recipient_id=recipient_id,
        address=address,
        campaign=campaign,
        at=at,
        action="failed",
        code=550,
        status="5.1.1",
        category="unknown-user",
        hard=True,
        diagnostic="550 5.1.1 no such user",
    )


async def deliver(store: Store, recipient_id: int, at: datetime) -> None:
    await store.record(
        AttemptResult(
            attempt(recipient_id, at, Outcome.DELIVERED, 250, "2.0.0", "250 ok"),
            State.DELIVERED,
        )
    )


async def defer(store: Store, recipient_id: int, at: datetime, wait: timedelta) -> None:
    await store.record(
        AttemptResult(
            attempt(recipient_id, at, Outcome.DEFERRED, 451, "4.7.1", "451 later"),
            State.DEFERRED,
            next_attempt_at=at + wait,
        )
    )


async def reject(store: Store, recipient_id: int, address: str, at: datetime) -> None:
    await store.record(
        AttemptResult(
            attempt(recipient_id, at, Outcome.BOUNCED, 550, "5.1.1", "550 unknown"),
            State.BOUNCED,
            bounce=bounce(recipient_id, address, at, "survey-1"),
        )
    )
