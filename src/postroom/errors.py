"""The one exception tree of postroom.

Every error that postroom raises on purpose derives from `PostroomError`.
Third-party errors (sqlite3, aiosmtplib, dnspython, pydantic) are translated
at the boundary where they enter, with ``raise ... from exc``.
"""

from __future__ import annotations


class PostroomError(Exception):
    """Root of every error postroom raises on purpose."""


class ConfigError(PostroomError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


class StorageError(PostroomError):
    """The durable store could not read or write; nothing half-written stays."""


class NotFound(PostroomError):
    """A queue id, recipient or campaign that the store does not hold."""


class DeliveryError(PostroomError):
    """Base of errors met while delivering to a remote server."""


class RouteError(DeliveryError):
    """No mail exchanger could be found for a domain.

    ``status`` is the enhanced status code that names a permanent cause.
    """

    status: str | None = None

    def __init__(self, domain: str, reason: str, *, permanent: bool) -> None:
        self.domain = domain
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"{domain}: {reason}")


class NoSuchDomain(RouteError):
    """The domain does not exist, or has neither MX nor address records."""

    # RFC 3463 section 3.2: X.1.2, bad destination system address.
    status = "5.1.2"

    def __init__(self, domain: str, reason: str) -> None:
        super().__init__(domain, reason, permanent=True)


class NullMx(RouteError):
    """The domain declares with a null MX that it accepts no mail."""

    # RFC 7505 section 4.2 names X.1.10 for a null MX.
    status = "5.1.10"

    def __init__(self, domain: str) -> None:
        super().__init__(domain, "the domain accepts no mail (null MX)", permanent=True)
