"""Listen addresses and URLs in the configuration: their form and clashes.

Pure functions over strings; the models in `postroom.config.schema` call
them as validators.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def parse_hostport(value: object) -> str:
    """``value`` if it is ``host:port`` with a port from 0 to 65535."""
    if not isinstance(value, str):
        raise ValueError("expected host:port, e.g. 127.0.0.1:2525")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:2525")
    return value


def split_hostport(value: str) -> tuple[str, int]:
    """The host (IPv6 brackets removed) and port of a checked ``host:port``."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


# The wildcard of each address family. A listener binds IPv6 sockets
# IPv6-only, so each wildcard takes its port on the addresses of its own
# family; an empty host binds both.
_WILDCARDS = {"0.0.0.0": 4, "::": 6}  # noqa: S104 -- compared, not bound


def same_socket(one: str, other: str) -> bool:
    """Whether two host:port values cannot both be listened on."""
    host, port = split_hostport(one)
    other_host, other_port = split_hostport(other)
    if port == 0 or port != other_port:
        return False
    host, other_host = host.lower(), other_host.lower()
    if host == other_host or "" in (host, other_host):
        return True
    return _covers(host, other_host) or _covers(other_host, host)


def _covers(wildcard: str, host: str) -> bool:
    """Whether ``wildcard`` takes its port on ``host`` too."""
    family = _WILDCARDS.get(wildcard)
    if family is None:
        return False
    return family == (6 if ":" in host else 4)


def check_unsubscribe_url(url: str) -> str:
    """``url`` without a trailing slash, if it may carry one-click unsubscribe.

    RFC 8058 section 3.1 requires an HTTPS URI; plain http is let through
    only for a loopback host, which serves nobody but tests.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an https URL")
    if parts.query or parts.fragment:
        raise ValueError("must have no query or fragment: the token ends the URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            "must be https (RFC 8058); plain http is allowed only on loopback"
        )
    return url.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
