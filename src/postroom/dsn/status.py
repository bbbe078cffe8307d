"""SMTP replies and enhanced status codes.

A reply is a three-digit basic code (RFC 5321 section 4.2) and one or more
lines of text; each line of a multi-line reply repeats the code, with a
hyphen after it on every line but the last. Many servers put an enhanced
status code (RFC 3463: class.subject.detail) at the start of the text.

RFC 3463 section 2 allows 1 to 3 digits for subject and detail. The class
is 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
A reply that carries no enhanced code gets ``<class>.0.0`` derived from its
basic code, so every stored attempt can be split into class, subject and
detail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_BASIC = re.compile(r"^([2-5]\d\d)(?:[ -]|$)")


@dataclass(frozen=True, slots=True)
class EnhancedStatus:
    """An RFC 3463 status code: class.subject.detail."""

    klass: int
    subject: int
    detail: int

    @classmethod
    def parse(cls, text: str) -> EnhancedStatus | None:
        """The first enhanced status code in ``text``, or None."""
        match = _ENHANCED.search(text)
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @classmethod
    def from_basic(cls, code: int) -> EnhancedStatus:
        """``<class>.0.0`` for a basic reply code such as 550."""
        return cls(code // 100, 0, 0)

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply as received: basic code, enhanced status, every line.

    ``status_given`` says whether the server wrote the enhanced code itself
    or it was derived from the basic code.
    """

    code: int
    status: EnhancedStatus
    text: str
    status_given: bool = True

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return 500 <= self.code < 600


def parse_reply(code: int, text: str) -> Reply:
    """Build a `Reply` from a basic code and the reply text.

    ``text`` may hold several lines, each with or without the repeated
    basic code in front; every line is kept. The enhanced code is taken
    from the start of the first line that has one, and must agree with the
    basic code's class, as RFC 3463 section 3 asks; otherwise it is derived.
    """
    lines = [_strip_code(line, code) for line in text.splitlines() or [""]]
    status: EnhancedStatus | None = None
    for line in lines:
        candidate = EnhancedStatus.parse(line[:16])
        if candidate is not None and candidate.klass == code // 100:
            status = candidate
            break
    joined = "\n".join(lines)
    if status is None:
        return Reply(code, EnhancedStatus.from_basic(code), joined, False)
    return Reply(code, status, joined, True)


def parse_reply_lines(lines: list[str]) -> Reply:
    """Parse raw reply lines such as ``["550-5.1.1 No", "550 5.1.1 such"]``."""
    if not lines:
        raise ValueError("an SMTP reply has at least one line")
    match = _BASIC.match(lines[0])
    if match is None:
        raise ValueError(f"not an SMTP reply line: {lines[0]!r}")
    return parse_reply(int(match[1]), "\n".join(lines))


def _strip_code(line: str, code: int) -> str:
    prefix = str(code)
    if line.startswith(prefix) and line[3:4] in (" ", "-", ""):
        return line[4:]
    return line
