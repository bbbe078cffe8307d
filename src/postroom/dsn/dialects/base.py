"""The interface every dialect detector implements, and what it finds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from postroom.dsn.report import Action
from postroom.dsn.view import MessageView


@dataclass(frozen=True, slots=True)
class Finding:
    """One recipient as a non-standard bounce describes it, unclassified."""

    recipient: str
    action: Action = Action.FAILED
    reply_code: str | None = None
    status: str | None = None
    diagnostic: str = ""
    remote_mta: str | None = None


@dataclass(frozen=True, slots=True)
class Dialect:
    """A bounce format: how to recognise it and how to read it.

    ``detect`` must be cheap (a header or a phrase); ``read`` returns the
    recipients it finds, or an empty list when the message is not in
    this format after all, so the next dialect is tried.
    """

    name: str
    detect: Callable[[MessageView], bool]
    read: Callable[[MessageView], list[Finding]]
