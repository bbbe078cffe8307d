"""The shape of postroom's YAML file, validated with pydantic.

Every model forbids unknown keys, so a typo such as ``max_agee`` is an
error that names the key instead of a setting silently ignored.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from postroom.config.units import format_duration, parse_duration, parse_size

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
Size = Annotated[int, BeforeValidator(parse_size)]


def _parse_hostport(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected host:port, e.g. 127.0.0.1:2525")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:2525")
    return value


HostPort = Annotated[str, BeforeValidator(_parse_hostport)]


def split_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueConfig(_Section):
    url: str | None = None
    retry_schedule: tuple[Duration, ...] = Field(
        default=tuple(timedelta(minutes=m) for m in (5, 10, 20, 40, 60, 120, 240)),
        min_length=1,
    )
    max_age: Duration = timedelta(days=4.5)
    keep_bodies: Duration = timedelta(days=7)
    keep_records: Duration = timedelta(days=400)
    purge_interval: Duration = timedelta(hours=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError(
                "must start with sqlite:/// or postgresql://, or be null for "
                "the SQLite file in data_dir"
            )
        return url

    @field_validator("retry_schedule")
    @classmethod
    def _positive_steps(cls, steps: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(step <= timedelta(0) for step in steps):
            raise ValueError("every step must be longer than zero")
        return steps


class TlsConfig(_Section):
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert is not None and self.key is not None


class SubmissionConfig(_Section):
    listen: HostPort = "127.0.0.1:2525"
    trusted_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    users: dict[str, str] = Field(default_factory=dict)
    tls: TlsConfig = TlsConfig()
    max_message_size: Size = 25_000_000
    max_recipients: int = Field(default=1000, ge=1)
    timeout: Duration = timedelta(minutes=5)

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a network: {exc}") from None
        return networks

    @field_validator("users")
    @classmethod
    def _hashed(cls, users: dict[str, str]) -> dict[str, str]:
        for name, hashed in users.items():
            if not hashed.startswith("scrypt$"):
                raise ValueError(
                    f"the password of {name!r} is not a postroom hash; make one "
                    "with `postroom passwd`"
                )
        return users


class CampaignsConfig(_Section):
    header: str = "X-Campaign-ID"


class DnsConfig(_Section):
    nameservers: tuple[str, ...] = ()
    port: int = Field(default=53, gt=0, lt=65536)
    timeout: Duration = timedelta(seconds=5)

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for server in servers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"{server!r} is not an IP address") from None
        return servers


class DeliveryConfig(_Section):
    routes: dict[str, HostPort] = Field(default_factory=dict)
    dns: DnsConfig = DnsConfig()
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    source_ip: str | None = None
    concurrency: int = Field(default=100, ge=1)
    per_domain_concurrency: int = Field(default=10, ge=1)
    starttls: Literal["opportunistic", "never"] = "opportunistic"
    connect_timeout: Duration = timedelta(seconds=30)
    command_timeout: Duration = timedelta(minutes=5)
    lease: Duration = timedelta(minutes=15)
    idle_connection_timeout: Duration = timedelta(seconds=10)
    poll_interval: Duration = timedelta(seconds=1)

    @field_validator("source_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value


class WebConfig(_Section):
    # Loopback by default: the site's TLS proxy forwards to it.
    listen: HostPort = "127.0.0.1:8025"


class UnsubscribeConfig(_Section):
    """One-click unsubscribe (RFC 8058); off while ``base_url`` is null."""

    base_url: str | None = None
    existing_header: Literal["keep", "replace"] = "keep"
    mailto_domain: str | None = None

    @field_validator("base_url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is None:
            return None
        return check_unsubscribe_url(url)

    @field_validator("mailto_domain")
    @classmethod
    def _domain(cls, domain: str | None) -> str | None:
        if domain is not None and (not domain or "@" in domain or " " in domain):
            raise ValueError(f"{domain!r} is not a domain")
        return domain


class DkimKeyConfig(_Section):
    domain: str
    selector: str
    key: Path
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"

    @field_validator("domain", "selector")
    @classmethod
    def _label(cls, name: str) -> str:
        if not name or any(c.isspace() or c in "@;=" for c in name):
            raise ValueError(f"{name!r} is not a DNS name")
        return name.lower().rstrip(".")


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(_Section):
    hostname: str = Field(default_factory=socket.getfqdn)
    data_dir: Path = Path("./var")
    queue: QueueConfig = QueueConfig()
    submission: SubmissionConfig = SubmissionConfig()
    campaigns: CampaignsConfig = CampaignsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    logging: LoggingConfig = LoggingConfig()
    web: WebConfig = WebConfig()
    unsubscribe: UnsubscribeConfig = UnsubscribeConfig()
    dkim: tuple[DkimKeyConfig, ...] = ()

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, name: str) -> str:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"{name!r} is not a host name")
        return name

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: from ``queue.url`` or the default in data_dir."""
        url = self.queue.url
        if url and url.startswith("sqlite:"):
            return Path(url.removeprefix("sqlite:").removeprefix("///"))
        return self.data_dir / "postroom.sqlite3"
