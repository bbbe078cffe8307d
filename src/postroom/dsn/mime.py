"""Just enough MIME to read a bounce, and read it fast.

The standard library's ``email`` package builds a full object tree for
every part and decodes every header, which costs more than a bounce is
worth: a bounce needs its top-level headers, the parts of a
``multipart/report`` (RFC 6522) and the text before the returned copy.
So this module splits header blocks itself (RFC 5322 section 2.2.3
unfolding), splits multiparts on their boundary (RFC 2046 section 5.1.1)
and decodes a part's body only when asked.

Line endings are normalised to LF once, on entry. Bytes are read as UTF-8
with undecodable bytes replaced, so nothing here raises on bad input; a
text part that declares no charset (or ASCII) but is not UTF-8 is read
line by line, each line that is not UTF-8 as Windows Latin-1.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field

_HEADER_LINE = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$")
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_MAX_DEPTH = 4
_MAX_PARTS = 40


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: its header fields in order and its raw body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    # Field values by lower-case name, built once: readers ask for the same
    # few fields many times per message.
    _index: dict[str, list[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _type: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        for key, value in self.headers:
            self._index.setdefault(key.lower(), []).append(value)
        given = self.get("Content-Type")
        kind = given.split(";", 1)[0].strip().lower() if given else ""
        object.__setattr__(self, "_type", kind or "text/plain")

    def get(self, name: str) -> str | None:
        """The first field called ``name`` (any case), or None."""
        values = self._index.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every field called ``name`` (any case), in order."""
        return list(self._index.get(name.lower(), ()))

    @property
    def content_type(self) -> str:
        """``maintype/subtype`` in lower case; text/plain when absent."""
        return self._type

    def param(self, name: str) -> str | None:
        """A parameter of the Content-Type field, such as ``boundary``."""
        value = self.get("Content-Type")
        if not value:
            return None
        wanted = name.lower()
        for match in _PARAM.finditer(value):
            if match[1].lower() == wanted:
                quoted = match[2]
                return quoted.replace("\\", "") if quoted is not None else match[3]
        return None

    def text(self) -> str:
        """The body with its transfer encoding undone, as text."""
        body = self.body
        encoding = (self.get("Content-Transfer-Encoding") or "").strip().lower()
        try:
            if encoding == "base64":
                body = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body) + b"==")
            elif encoding == "quoted-printable":
                body = quopri.decodestring(body)
        except (binascii.Error, ValueError):
            pass
        return _decode(body, self.param("charset"))


def split_message(raw: bytes) -> Part:
    """Split a whole message into its header fields and its body."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if raw.startswith(b"From ") and b"\n" in raw:
        # An mbox "From " separator line is not a header field.
        raw = raw.split(b"\n", 1)[1]
    head, separator, body = raw.partition(b"\n\n")
    if not separator and not _looks_like_header(head):
        return Part((), raw)
    return Part(parse_headers(head.decode("utf-8", "replace")), body)


def parse_headers(block: str) -> tuple[tuple[str, str], ...]:
    """Header fields from a block of ``Name: value`` lines, unfolded.

    Continuation lines (leading space or tab) join the line above; a line
    that is not a field is skipped rather than ending the block.
    """
    # Unfolding keeps the white space of the continuation (RFC 5322
    # section 2.2.3); readers strip or squeeze values as they need.
    block = block.replace("\n ", " ").replace("\n\t", " ")
    fields: list[tuple[str, str]] = []
    for line in block.split("\n"):
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.rstrip(" \t")
        if _is_field_name(name):
            fields.append((name, value.strip()))
    return tuple(fields)


def walk(part: Part) -> list[Part]:
    """``part`` and every part nested in it, depth first, bounded in size.

    A ``message/rfc822`` part is not entered: it is the returned original.
    """
    found: list[Part] = []
    _walk(part, found, 0)
    return found


def subparts(part: Part) -> list[Part]:
    """The direct children of a multipart entity; empty for any other."""
    if not part.content_type.startswith("multipart/"):
        return []
    boundary = part.param("boundary") or _boundary_in(part.body)
    if not boundary:
        return []
    delimiter = b"--" + boundary.encode("utf-8", "replace")
    chunks = part.body.split(b"\n" + delimiter)
    if part.body.startswith(delimiter):
        chunks[0:1] = [b"", chunks[0][len(delimiter) :]]
    children = []
    for chunk in chunks[1 : _MAX_PARTS + 1]:
        if chunk.startswith(b"--"):
            break
        # The rest of the delimiter line is transport padding (RFC 2046).
        chunk = chunk.split(b"\n", 1)[1] if b"\n" in chunk else b""
        children.append(split_part(chunk))
    return children


def _boundary_in(body: bytes) -> str | None:
    """The boundary of a multipart whose Content-Type lost its parameter.

    Some writers fold ``boundary=`` onto a line of its own without the
    leading white space of a continuation, so the header parser drops it;
    the first delimiter line in the body still names it (RFC 2046
    section 5.1.1).
    """
    for line in body.lstrip(b"\n").split(b"\n", 3)[:3]:
        if line.startswith(b"--") and 2 < len(line.rstrip()) <= 72:
            return line.rstrip()[2:].decode("utf-8", "replace")
    return None


def split_part(chunk: bytes) -> Part:
    """A body part: header fields up to the first empty line, then body."""
    if chunk.startswith(b"\n"):
        return Part((), chunk[1:])
    head, separator, body = chunk.partition(b"\n\n")
    if not separator:
        return Part(parse_headers(head.decode("utf-8", "replace")), b"")
    return Part(parse_headers(head.decode("utf-8", "replace")), body)


def _walk(part: Part, found: list[Part], depth: int) -> None:
    found.append(part)
    if depth >= _MAX_DEPTH or len(found) > _MAX_PARTS:
        return
    for child in subparts(part):
        _walk(child, found, depth + 1)


def _is_field_name(name: str) -> bool:
    """Printable ASCII without space or colon (RFC 5322 section 2.2)."""
    return bool(name) and name.isascii() and name.isprintable() and " " not in name


def _looks_like_header(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    return _HEADER_LINE.match(first) is not None


def _decode(body: bytes, charset: str | None) -> str:
    name = (charset or "").strip().lower()
    if name in ("", "us-ascii", "ascii"):
        # Undeclared 8-bit text, or "ASCII" that is not: UTF-8 where it
        # reads as such, else the Windows Latin-1 that older servers write
        # (as browsers read such text). Line by line, since a report in
        # UTF-8 may quote a returned header in Latin-1 below it.
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return "\n".join(map(_utf8_or_latin1, body.split(b"\n")))
    if name == "utf8":
        name = "utf-8"
    try:
        return body.decode(name, "replace")
    except (LookupError, ValueError):
        return body.decode("utf-8", "replace")


def _utf8_or_latin1(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1252", "replace")
