"""Real network peers for the relay tests: a DNS server and an SMTP sink."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import pytest
import trustme

from tests.relay.dnsserver import DnsServer
from tests.relay.sink import Sink


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
