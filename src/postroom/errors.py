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
    """No mail exchanger could be found for a domain."""

    def __init__(self, domain: str, reason: str, *, permanent: bool) -> None:
        self.domain = domain
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"{domain}: {reason}")
