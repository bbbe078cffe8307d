"""Fixtures shared by every part's tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from postroom.clock import ManualClock
from postroom.config import Config
from tests.peers import postgres
from tests.peers.dnsserver import DnsServer
from tests.peers.sink import Sink


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The embedded default with its data directory in a temporary folder."""
    return Config(data_dir=tmp_path / "var")


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An empty authoritative DNS server on 127.0.0.1 (``.port``); fill its
    zone with ``add(name, type, *records)``."""
    server = DnsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A scripted SMTP sink; call ``await sink.listen()`` for a port."""
    receiver = Sink()
    yield receiver
    await receiver.close()


@pytest.fixture(scope="session")
def server_tls_context() -> ssl.SSLContext:
    """A server TLS context with a certificate from a throwaway CA."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("sink.test").configure_cert(context)
    return context


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of this test's own on the shared server
    (127.0.0.1:5432), dropped afterwards; skips when no server answers."""
    problem = await postgres.shared_server_problem()
    if problem is not None:
        pytest.skip(problem)
    url = await postgres.create_database()
    yield url
    await postgres.drop_database(url)
