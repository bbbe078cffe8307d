"""The shape of postroom's YAML file, validated with pydantic.

Every model forbids unknown keys, so a typo such as ``max_agee`` is an
error that names the key instead of a setting silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from postroom.config.addresses import (
    check_unsubscribe_url,
    parse_hostport,
    same_socket,
)
from postroom.config.units import format_duration, parse_duration, parse_size
from postroom.dsn.classify import Category

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
Size = Annotated[int, BeforeValidator(parse_size)]


HostPort = Annotated[str, BeforeValidator(parse_hostport)]


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
    # Processes accepting on ``listen`` (SO_REUSEPORT); see relay.acceptors.
    processes: int = Field(default=1, ge=1, le=64)

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for network in networks:
            try:
                parsed = ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                problems.append(f"{network!r} is not a network: {exc}")
                continue
            if parsed.prefixlen == 0:
                problems.append(
                    f"{network!r} trusts every address on the internet and would "
                    "make postroom an open relay; authenticate remote clients instead"
                )
        if problems:
            raise ValueError("; ".join(problems))
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

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> SubmissionConfig:
        if self.users and not self.tls.enabled:
            # RFC 4954 section 4: AUTH PLAIN and LOGIN send the password in
            # clear, so postroom offers them only after STARTTLS.
            raise ValueError(
                "users are set but tls is not: AUTH is offered only over TLS, "
                "so set submission.tls.cert and submission.tls.key"
            )
        return self


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

    @model_validator(mode="after")
    def _lease_outlasts_a_transaction(self) -> DeliveryConfig:
        # A lease shorter than an attempt would let the recipient be taken
        # again while its first attempt still runs: a duplicate delivery.
        longest = 2 * (self.connect_timeout + self.command_timeout)
        if self.lease < longest:
            raise ValueError(
                f"lease ({format_duration(self.lease)}) must be at least twice "
                "connect_timeout + command_timeout "
                f"({format_duration(longest)}), the longest SMTP transaction"
            )
        return self

    @field_validator("source_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value


# DNS blocklists known to list IPv6 addresses; other zones are asked about
# IPv4 only, unless an entry says ``ipv6: true``.
IPV6_ZONES = frozenset({"zen.spamhaus.org"})


class DnsblZone(_Section):
    """One DNS blocklist zone; written as its name, or as a mapping."""

    zone: str
    ipv6: bool = False


def _zone_entry(value: object) -> object:
    if isinstance(value, str):
        zone = value.strip().strip(".").lower()
        return {"zone": zone, "ipv6": zone in IPV6_ZONES}
    return value


ZoneEntry = Annotated[DnsblZone, BeforeValidator(_zone_entry)]


def _zones(*names: str) -> tuple[DnsblZone, ...]:
    return tuple(DnsblZone(zone=name, ipv6=name in IPV6_ZONES) for name in names)


class BlacklistMonitorConfig(_Section):
    report_to: tuple[str, ...] = ()
    report_from: str | None = None
    sending_ips: tuple[str, ...] = ()
    sending_domains: tuple[str, ...] = ()
    ip_zones: tuple[ZoneEntry, ...] = _zones(
        "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"
    )
    domain_zones: tuple[ZoneEntry, ...] = _zones("dbl.spamhaus.org")
    dns: DnsConfig = DnsConfig()
    timezone: str = "UTC"
    all_clear: bool = True

    @field_validator("sending_ips")
    @classmethod
    def _ips(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return values

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a known time zone") from None
        return name


# A local part we put in front of "+TOKEN": at most 32 characters, so that
# with the longest token (31) it stays within the 64 octets of RFC 5321
# section 4.5.3.1.1; lowercase, so that a server that lowercases the
# return path does not change it.
_LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,30}[a-z0-9])?")


def _check_local_part(value: str) -> str:
    if not _LOCAL_PART.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{value!r} must be 1 to 32 lowercase letters, digits, '.', '-' or '_'"
        )
    return value


LocalPart = Annotated[str, AfterValidator(_check_local_part)]


class InboundConfig(_Section):
    """The MX for the bounce domain: DSNs, complaints, unsubscribes, postmaster."""

    listen: HostPort = "127.0.0.1:2526"
    bounce_domain: str | None = None
    bounce_local: LocalPart = "bounces"
    secret: str | None = None
    postmaster_forward: tuple[str, ...] = ()
    feedback_local: LocalPart = "fbl"
    unsubscribe_local: LocalPart = "unsubscribe"
    max_message_size: Size = 10_000_000
    timeout: Duration = timedelta(minutes=5)

    @field_validator("bounce_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower().rstrip(".")
        if not value or "." not in value or any(c.isspace() or c == "@" for c in value):
            raise ValueError(f"{value!r} is not a domain name")
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("postmaster_forward")
    @classmethod
    def _addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            local, at, domain = value.rpartition("@")
            if not at or not local or "." not in domain:
                raise ValueError(f"{value!r} is not an e-mail address")
        return values

    @model_validator(mode="after")
    def _distinct_locals(self) -> InboundConfig:
        names = (self.bounce_local, self.feedback_local, self.unsubscribe_local)
        if len(set(names)) != len(names) or "postmaster" in names:
            raise ValueError(
                "bounce_local, feedback_local and unsubscribe_local must differ "
                "from each other and from postmaster"
            )
        return self


# Categories whose failure means the address itself is bad, plus
# complaints: an address there is not mailed again. Blocks, policy
# rejections, full mailboxes and expiry are the sender's or the moment's
# problem, so they are recorded but suppress nobody.
DEFAULT_SUPPRESS = frozenset(
    {
        Category.UNKNOWN_USER,
        Category.UNKNOWN_DOMAIN,
        Category.MAILBOX_GONE,
        Category.COMPLAINT,
    }
)


def _default_policy() -> dict[str, bool]:
    return {str(c): c in DEFAULT_SUPPRESS for c in Category}


def _known_category(name: str) -> str:
    known = [str(c) for c in Category]
    if name not in known:
        raise ValueError(f"unknown category; known: {', '.join(sorted(known))}")
    return name


# Keys and values are checked one by one, so every broken entry is named.
PolicyCategory = Annotated[str, AfterValidator(_known_category)]


class SuppressionConfig(_Section):
    """Which failures put an address on a suppression list, and which list."""

    scope: Literal["campaign", "global"] = "campaign"
    policy: dict[PolicyCategory, bool] = Field(default_factory=_default_policy)

    @field_validator("policy")
    @classmethod
    def _fill_defaults(cls, policy: dict[str, bool]) -> dict[str, bool]:
        # Categories not named keep their default.
        return {**_default_policy(), **policy}


def _check_password_hashes(users: dict[str, str]) -> dict[str, str]:
    for name, hashed in users.items():
        if not hashed.startswith("scrypt$"):
            raise ValueError(
                f"the password of {name!r} is not a postroom hash; make one "
                "with `postroom passwd`"
            )
    return users


class WebConfig(_Section):
    # Loopback by default: the site's TLS proxy forwards to it.
    listen: HostPort = "127.0.0.1:8025"
    # The results pages, CSV downloads and /metrics. On by default: they
    # are reached only from this machine until listen or a proxy says
    # otherwise; anything wider should set users.
    results: bool = True
    users: Annotated[dict[str, str], AfterValidator(_check_password_hashes)] = Field(
        default_factory=dict
    )


WebhookEvent = Literal["delivered", "deferred", "bounced", "unsubscribed", "complaint"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "delivered",
    "deferred",
    "bounced",
    "unsubscribed",
    "complaint",
)


class WebhookConfig(_Section):
    """One endpoint that is posted the events it asks for, signed."""

    url: str
    secret: str = Field(min_length=16)
    events: tuple[WebhookEvent, ...] = WEBHOOK_EVENTS

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http or https URL")
        return url


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
    inbound: InboundConfig = InboundConfig()
    suppression: SuppressionConfig = SuppressionConfig()
    logging: LoggingConfig = LoggingConfig()
    blacklist_monitor: BlacklistMonitorConfig = BlacklistMonitorConfig()
    web: WebConfig = WebConfig()
    unsubscribe: UnsubscribeConfig = UnsubscribeConfig()
    dkim: tuple[DkimKeyConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()

    @field_validator("webhooks")
    @classmethod
    def _distinct_urls(
        cls, hooks: tuple[WebhookConfig, ...]
    ) -> tuple[WebhookConfig, ...]:
        # The outbox names an endpoint by its URL.
        urls = [hook.url for hook in hooks]
        if len(set(urls)) != len(urls):
            raise ValueError("each webhook url may appear only once")
        return hooks

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, name: str) -> str:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"{name!r} is not a host name")
        return name

    @property
    def serves_web(self) -> bool:
        """Whether anything the web listener serves is asked for."""
        return self.web.results or self.unsubscribe.base_url is not None

    def listeners(self) -> dict[str, str]:
        """The addresses `serve` listens on, by the key that sets each."""
        found = {"submission.listen": self.submission.listen}
        if self.inbound.bounce_domain is not None:
            found["inbound.listen"] = self.inbound.listen
        if self.serves_web:
            found["web.listen"] = self.web.listen
        return found

    def listener_clashes(self) -> list[str]:
        """A problem for each two listeners set to one address and port.

        Port 0 asks for any free port and clashes with nothing; a host that
        listens on every address (0.0.0.0, ::) clashes with any other on
        its port.
        """
        problems = []
        taken: list[tuple[str, str]] = []
        for key, value in self.listeners().items():
            for other_key, other in taken:
                if same_socket(value, other):
                    problems.append(
                        f"{key}: {value} is also {other_key} ({other}); "
                        "each listener needs its own port"
                    )
            taken.append((key, value))
        return problems

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: from ``queue.url`` or the default in data_dir."""
        url = self.queue.url
        if url and url.startswith("sqlite:"):
            return Path(url.removeprefix("sqlite:").removeprefix("///"))
        return self.data_dir / "postroom.sqlite3"
