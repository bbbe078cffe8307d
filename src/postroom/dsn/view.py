"""A bounce made ready for reading: headers, text, and the returned copy.

Every dialect reads the same few things, so they are worked out once:
the top-level header fields, the human-readable text the reporting
server wrote (up to the copy of the returned message), and the header
fields of that returned message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import MessageError
from email.header import decode_header, make_header

from postroom.dsn.evidence import ADDRESS
from postroom.dsn.mime import Part, parse_headers, walk

# Phrases (lower case) of the line after which non-standard bounces quote
# the returned message. Found with str.find: a regex alternation over the
# whole text costs more than the rest of the parse.
_COPY_MARKERS = (
    "this is a copy of the message",
    "below this line is a copy of the message",
    "copy of the original message",
    "copy of your message",
    "original message follows",
    "message headers follow",
    "----- original message",
    "---- original message",
    "--- original message",
    "the header of the original message",
    "headers of the original message",
    "------ returned message",
    "----- returned message",
    "--- unsent message below",
    "------ failed message",
    "----- undelivered message",
)
_HEADERISH = re.compile(
    r"^(?:Return-Path|Received|From|Message-I[dD]|Date|To|Subject|X-[\w-]+"
    r"|DKIM-Signature|MIME-Version|Content-Type|Reply-To|Delivered-To):",
    re.MULTILINE | re.IGNORECASE,
)
# Header fields that only a quoted message has, at the start of a line: when
# no phrase introduces the returned copy, the first of them starts it.
_QUOTED_HEADER = re.compile(
    r"^(?:Received|Message-I[dD]|Return-Path|DKIM-Signature|In-Reply-To"
    r"|References|Authentication-Results|MIME-Version):",
    re.MULTILINE | re.IGNORECASE,
)
_MAX_TEXT = 60_000


@dataclass(frozen=True, slots=True)
class MessageView:
    """The parts of an inbound message that every reader needs."""

    top: Part
    parts: tuple[Part, ...]
    subject: str
    sender: str  # the From field as written
    text: str  # the reporting server's own words, copy of the original cut off
    full_text: str  # the first text part whole, copy included
    original_headers: tuple[tuple[str, str], ...]

    def has_part(self, *content_types: str) -> Part | None:
        """The first part of one of the given content types, or None."""
        for part in self.parts:
            if part.content_type in content_types:
                return part
        return None

    @property
    def own_addresses(self) -> frozenset[str]:
        """Addresses of the bounce's sender and receiver, in lower case.

        These and the returned message's From are never a failed recipient.
        """
        found: set[str] = set()
        for name in ("From", "To", "Return-Path", "Reply-To"):
            for value in self.top.get_all(name):
                found.update(a.lower() for a in ADDRESS.findall(value))
        for name, value in self.original_headers:
            if name.lower() in ("from", "return-path", "sender", "reply-to"):
                found.update(a.lower() for a in ADDRESS.findall(value))
        return frozenset(found)


def make_view(top: Part) -> MessageView:
    """Work out the text, subject and returned headers of a message."""
    parts = tuple(walk(top))
    text_part = _first_text_part(parts)
    full_text = text_part.text()[:_MAX_TEXT] if text_part is not None else ""
    cut = _copy_marker(full_text)
    text = full_text[:cut] if cut >= 0 else full_text
    original = _original_headers(parts, full_text, cut)
    return MessageView(
        top=top,
        parts=parts,
        subject=decode_words(top.get("Subject") or ""),
        sender=top.get("From") or "",
        text=text,
        full_text=full_text,
        original_headers=original,
    )


def decode_words(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded, leniently."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError, MessageError):
        return value


def _copy_marker(text: str) -> int:
    """Where the line that introduces the returned copy starts, or -1."""
    lowered = text.lower()
    found = [at for at in map(lowered.find, _COPY_MARKERS) if at >= 0]
    if not found:
        quoted = _QUOTED_HEADER.search(text)
        return quoted.start() if quoted is not None else -1
    return lowered.rfind("\n", 0, min(found)) + 1


def _first_text_part(parts: tuple[Part, ...]) -> Part | None:
    for part in parts:
        kind = part.content_type
        if kind.startswith("text/") and kind != "text/rfc822-headers":
            return part
    if len(parts) == 1 and parts[0].content_type.startswith("multipart/"):
        # A multipart whose delimiters were lost in transit or never
        # written: its body is the only text there is.
        return parts[0]
    return None


def _original_headers(
    parts: tuple[Part, ...], full_text: str, cut: int
) -> tuple[tuple[str, str], ...]:
    for part in parts:
        if part.content_type in ("message/rfc822", "message/global"):
            body = part.body.lstrip(b"\n")
            return parse_headers(body.partition(b"\n\n")[0].decode("utf-8", "replace"))
        if part.content_type in ("text/rfc822-headers", "message/global-headers"):
            return parse_headers(part.text())
    if cut < 0:
        return ()
    rest = full_text[full_text.find("\n", cut) + 1 :]
    start = _HEADERISH.search(rest)
    if start is None:
        return ()
    block = rest[start.start() :].split("\n\n", 1)[0]
    return parse_headers(block)
