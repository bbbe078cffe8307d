"""A small authoritative DNS server on loopback, for tests.

It serves a zone given as a dict of names to record types to record texts,
over UDP and TCP on one free port, from a background thread:

    server = DnsServer({
        "example.net": {"MX": ["10 mx1.example.net.", "20 mx2.example.net."]},
        "mx1.example.net": {"A": ["127.0.0.1"]},
        "nomail.example.net": {"MX": ["0 ."]},
    })

Every name not in the zone gets NXDOMAIN; a known name asked for a type it
lacks gets an empty NOERROR answer. Names added to ``servfail`` get
SERVFAIL, names added to ``silent`` get no answer at all. The zone and
both sets may be changed while the server runs. ``queries`` counts what
was asked, as ``(name, type)`` pairs, so tests can see cache hits.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import Counter
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Zone = dict[str, dict[str, list[str]]]


class DnsServer:
    def __init__(self, zone: Zone | None = None, *, ttl: int = 300) -> None:
        self.zone: Zone = {_key(name): dict(rrs) for name, rrs in (zone or {}).items()}
        self.ttl = ttl
        self.servfail: set[str] = set()
        self.silent: set[str] = set()
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self.port = 0

    def add(self, name: str, rdtype: str, *records: str) -> None:
        with self._lock:
            self.zone.setdefault(_key(name), {})[rdtype] = list(records)

    def start(self) -> None:
        udp, tcp = _bind_pair(self)
        self.port = udp.server_address[1]
        self._servers = [udp, tcp]
        for server in self._servers:
            threading.Thread(
                target=server.serve_forever, args=(0.05,), daemon=True
            ).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query, or None to stay silent."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = _key(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries[(name, rdtype)] += 1
            if name in self.silent:
                return None
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if name in self.servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
            elif name not in self.zone:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif records := self.zone[name].get(rdtype):
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, self.ttl, "IN", rdtype, records
                    )
                )
        return response.to_wire()


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class _Udp(socketserver.ThreadingUDPServer):
    daemon_threads = True
    dns: DnsServer


class _Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    dns: DnsServer


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _Udp

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.dns.answer(data)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.StreamRequestHandler):
    server: _Tcp

    def handle(self) -> None:
        header = self.rfile.read(2)
        if len(header) < 2:
            return
        (length,) = struct.unpack("!H", header)
        reply = self.server.dns.answer(self.rfile.read(length))
        if reply is not None:
            self.wfile.write(struct.pack("!H", len(reply)) + reply)


def _bind_pair(owner: DnsServer) -> tuple[_Udp, _Tcp]:
    # UDP and TCP must share one port number; pick UDP's free port and
    # retry in the rare case TCP's is taken.
    for _ in range(20):
        udp = _Udp(("127.0.0.1", 0), _UdpHandler)
        try:
            tcp = _Tcp(("127.0.0.1", udp.server_address[1]), _TcpHandler)
        except OSError:
            udp.server_close()
            continue
        udp.dns = tcp.dns = owner
        return udp, tcp
    raise OSError("no free port for both UDP and TCP")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: Any = sock.getsockname()[1]
        return int(port)
