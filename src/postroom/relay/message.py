"""What the submission listener reads from, and writes into, a message.

Only the header section is parsed; the body is carried as opaque bytes, so
a large or broken MIME body costs nothing and is relayed exactly as sent.

The header section (RFC 5322 section 2.2) is cut into fields: a line that
starts with a field name and a colon opens a field, a line that starts
with a space or tab continues it, and the first empty line, or the first
line that is neither, ends the section. Each field keeps its raw bytes so
that removing one field leaves every other byte where it was.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.utils import format_datetime, getaddresses

# Bare CR or bare LF, or CRLF: every one of them becomes CRLF (RFC 5321
# section 2.3.8 allows no other line ending in a message).
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_FIELD_NAME = re.compile(rb"[!-9;-~]+:")
_FOLD = re.compile(r"\r\n(?=[ \t])")

_CAMPAIGN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+@/=-]{0,127}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_HELO_UNSAFE = re.compile(r"[^!-'*-~]")  # no spaces, parentheses or controls
# Lone surrogates: what Python makes of bytes that are not UTF-8 (and of some
# decoders' output); no store or socket can encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# RFC 5321 section 4.1.2: a Quoted-string local part holds printable ASCII
# but '"' and '\\' (qtextSMTP), or a backslash and any printable ASCII
# (quoted-pairSMTP); RFC 6531 section 3.3 adds non-ASCII characters.
_QUOTED_LOCAL = re.compile(r'"(?:[ !#-\[\]-~]|\\[ -~]|[^\x00-\x7f])*"')
# Characters a Dot-string local part may not hold (RFC 5321 section 4.1.2:
# specials, space, controls). Consecutive dots are let through: such
# addresses exist, and their own domain is the one to judge them.
_UNQUOTED_LOCAL_UNSAFE = re.compile(r'[\x00-\x20\x7f"(),:;<>@\[\\\]]')


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field exactly as it was sent, folding and CRLF included."""

    name: str
    raw: bytes

    @property
    def value(self) -> str:
        """The unfolded value, trimmed; bytes that are not UTF-8 become U+FFFD."""
        text = self.raw.decode("utf-8", "replace")
        unfolded = _FOLD.sub("", text.partition(":")[2])
        return unfolded.strip()


def normalize_line_endings(data: bytes) -> bytes:
    """``data`` with every line ending, bare CR and bare LF as well, made CRLF."""
    # Nearly every client sends CRLF already; counting is much cheaper than
    # rewriting the whole message to find that out.
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
        return data
    return _LINE_ENDING.sub(b"\r\n", data)


def split_header(raw: bytes) -> tuple[list[HeaderField], bytes]:
    """The header fields of a CRLF message, and the rest of it.

    The rest starts with the empty line that ended the header section (or
    with the first line that was not a header field) and runs to the end.
    """
    fields: list[HeaderField] = []
    position = 0
    while position < len(raw):
        end = raw.find(b"\r\n", position)
        end = len(raw) if end < 0 else end + 2
        line = raw[position:end]
        if line[:1] in (b" ", b"\t") and fields:
            last = fields[-1]
            fields[-1] = HeaderField(last.name, last.raw + line)
        elif (match := _FIELD_NAME.match(line)) is not None:
            name = match.group()[:-1].decode("ascii")
            fields.append(HeaderField(name, line))
        else:
            break
        position = end
    return fields, raw[position:]


def join_header(fields: Sequence[HeaderField], rest: bytes) -> bytes:
    """The message made of ``fields`` followed by ``rest``."""
    return b"".join(field.raw for field in fields) + rest


def first_value(fields: Sequence[HeaderField], name: str) -> str | None:
    """The value of the first field called ``name`` (any case), if one is there."""
    wanted = name.lower()
    for field in fields:
        if field.name.lower() == wanted:
            return field.value
    return None


def without(fields: Sequence[HeaderField], name: str) -> list[HeaderField]:
    """``fields`` minus every field called ``name`` (any case)."""
    wanted = name.lower()
    return [field for field in fields if field.name.lower() != wanted]


def clean_campaign(value: str) -> str | None:
    """A campaign name from a header value, or None when it is not usable.

    Campaign names end up in file names, URLs and CSV cells, so they are kept
    to letters, digits and ``. _ : + @ / = -``, at most 128 characters.
    """
    value = value.strip()
    return value if _CAMPAIGN.fullmatch(value) else None


def display_names(fields: Sequence[HeaderField], addresses: Sequence[str]) -> list[str]:
    """For each address, the display name the To: or Cc: header gives it, or "".

    Addresses are compared without regard to case. RFC 2047 encoded words
    in a name are decoded.
    """
    names: dict[str, str] = {}
    values = [field.value for field in fields if field.name.lower() in ("to", "cc")]
    for name, address in getaddresses(values):
        key = address.casefold()
        if key and name and key not in names:
            names[key] = printable(_decode_words(name)).strip()
    return [names.get(address.casefold(), "") for address in addresses]


def is_utf8(text: str) -> bool:
    """Whether ``text`` came from valid UTF-8 (holds no lone surrogate).

    aiosmtpd decodes command arguments with ``surrogateescape``, so a byte
    that is not part of a UTF-8 sequence shows up as a lone surrogate.
    """
    return _SURROGATE.search(text) is None


def is_mailbox(address: str) -> bool:
    """Whether ``address`` is a well-formed RFC 5321 Mailbox (section 4.1.2).

    The local part is a dot-string or a quoted string; the domain is one
    or more letter-digit-hyphen labels (non-ASCII letters allowed, for
    SMTPUTF8) or an address literal such as ``[192.0.2.1]``. Whether the
    domain could be routed to is not asked: ``root@vm`` is a mailbox.
    """
    local, at, domain = address.rpartition("@")
    if not at or not local or len(address) > 254 or not is_utf8(address):
        return False
    if len(local.encode("utf-8")) > 64 or not _is_local_part(local):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        return _is_address_literal(domain[1:-1])
    return _is_domain(domain)


def is_plausible_address(address: str) -> bool:
    """Whether ``address`` is a mailbox with a domain that could exist.

    On top of `is_mailbox`: a domain name has at least two labels and a
    top label that is not all digits (an address literal also passes).
    """
    if not is_mailbox(address):
        return False
    domain = address.rpartition("@")[2]
    if domain.startswith("["):
        return True
    labels = domain.removesuffix(".").split(".")
    return len(labels) >= 2 and not labels[-1].isdigit()


def has_dotless_domain(address: str) -> bool:
    """Whether the domain of ``address`` is a single label, such as ``vm``."""
    domain = address.rpartition("@")[2].removesuffix(".")
    return not domain.startswith("[") and "." not in domain


def printable(text: str) -> str:
    """``text`` fit to store and show: lone surrogates become U+FFFD, and
    control characters are dropped."""
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def new_message_id(hostname: str) -> str:
    """A fresh ``<random@hostname>`` msg-id (RFC 5322 section 3.6.4)."""
    return f"<{secrets.token_hex(16)}@{hostname}>"


def new_field(name: str, value: str) -> HeaderField:
    """A one-line header field ``name: value`` with CRLF."""
    return HeaderField(name, f"{name}: {value}\r\n".encode())


def date_field(when: datetime) -> HeaderField:
    """An origination ``Date:`` field for ``when`` (RFC 5322 section 3.6.1)."""
    return new_field("Date", format_datetime(when))


def received_header(
    *,
    helo: str,
    peer_ip: str,
    peer_name: str | None,
    hostname: str,
    protocol: str,
    transaction_id: str,
    recipient: str | None,
    when: datetime,
) -> bytes:
    """A ``Received:`` trace field (RFC 5321 section 4.4), folded, with CRLF.

    ``protocol`` is ESMTP, ESMTPS, ESMTPA or ESMTPSA (RFC 3848). The ``for``
    clause is only written for a single recipient, so one copy never shows
    the other recipients of the same message.
    """
    literal = _address_literal(peer_ip)
    tcp_info = f"{peer_name} {literal}" if peer_name else literal
    lines = [
        f"Received: from {_safe_helo(helo)} ({tcp_info})",
        f"\tby {hostname} with {protocol} id {transaction_id}",
    ]
    if recipient is not None:
        lines.append(f"\tfor <{recipient}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _decode_words(name: str) -> str:
    try:
        return str(make_header(decode_header(name))).strip()
    except (ValueError, LookupError, UnicodeError):
        return name.strip()


def _is_local_part(local: str) -> bool:
    if local.startswith('"'):
        return _QUOTED_LOCAL.fullmatch(local) is not None
    return _UNQUOTED_LOCAL_UNSAFE.search(local) is None


def _is_domain(domain: str) -> bool:
    if not domain or len(domain) > 253:
        return False
    return all(_is_label(label) for label in domain.removesuffix(".").split("."))


def _is_label(label: str) -> bool:
    if label.isascii():
        return _LABEL.fullmatch(label) is not None
    # An internationalized label: letters and digits of any script, and
    # inner hyphens; its A-label form is left to the resolver.
    return (
        0 < len(label) <= 63
        and not label.startswith("-")
        and not label.endswith("-")
        and all(c.isalnum() or c == "-" for c in label)
    )


def _is_address_literal(text: str) -> bool:
    candidate = text.removeprefix("IPv6:") if text.startswith("IPv6:") else text
    try:
        parsed = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return (parsed.version == 6) == text.startswith("IPv6:")


def _address_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _safe_helo(helo: str) -> str:
    # The HELO argument is whatever the client typed; keep it to one token
    # without comment characters so the trace field stays parseable.
    cleaned = _HELO_UNSAFE.sub("_", helo)[:255]
    return cleaned or "unknown"
