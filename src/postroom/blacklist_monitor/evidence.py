"""Which refusals were the sender's fault, what they name, and by whom.

How this works: `postroom.dsn.classify` names the cause of a reply; a
refusal counts as a block of the sender when that cause is ``blocked``
(a blocklist, bad reputation, no reverse DNS), or when the reply carries
one of the codes that the large mailbox providers use for blocking a
sending IP or domain, whatever their wording says. Microsoft's
``S3140``/``S3150`` and Exchange Online's 5.7.606 to 5.7.708, Yahoo's
``TSS04``/``TS03`` and Gmail's 4.7.28 are such codes; their texts often
speak of spam or volume and would otherwise be read as such.

The refusals of a day are then grouped by the provider that refused them
(known from the MX host or the reply), else by the MX host's domain.

Pure: values in, frozen dataclasses out; no I/O, no logging.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from postroom.dsn.classify import Category, classify
from postroom.dsn.status import EnhancedStatus
from postroom.queue.models import Failure


class BlockKind(StrEnum):
    """Why the receiver refused the sender."""

    BLOCKLIST = "blocklist"  # a DNS blocklist was named or consulted
    REVERSE_DNS = "reverse_dns"  # the sending IP has no (matching) PTR
    PROVIDER = "provider"  # a provider's own block code
    REPUTATION = "reputation"  # any other refusal of the sender


@dataclass(frozen=True, slots=True)
class SenderBlock:
    """A refusal of the sender, with the list and provider it names."""

    kind: BlockKind
    blocklist: str | None = None  # "zen.spamhaus.org", or "Spamhaus"
    provider: str | None = None  # "Microsoft", "Yahoo", "Gmail"
    provider_code: str | None = None  # "S3150", "TSS04", "5.7.606"


@dataclass(frozen=True, slots=True)
class BlockedMessage:
    """One refusal of one recipient that was the sender's fault."""

    failure: Failure
    block: SenderBlock
    group: str  # the provider, else the MX domain
    subject: str = ""  # the message's Subject, when its body is still kept


@dataclass(frozen=True, slots=True)
class BlockGroup:
    """The day's blocks by one provider or at one MX domain."""

    key: str
    provider: str | None
    count: int
    recipients: int
    codes: tuple[tuple[str, int], ...]  # ("554 5.7.1", 3), most frequent first
    blocklists: tuple[str, ...]
    campaigns: tuple[str, ...]
    sample: str
    first: datetime
    last: datetime


# Domains of the mail exchangers of the providers whose codes are known.
_PROVIDER_MX = (
    ("google.com", "Gmail"),
    ("googlemail.com", "Gmail"),
    ("outlook.com", "Microsoft"),
    ("hotmail.com", "Microsoft"),
    ("yahoodns.net", "Yahoo"),
    ("yahoo.com", "Yahoo"),
)
# Words in a reply that give its provider away when the MX host does not.
_PROVIDER_TEXT = (
    (re.compile(r"gsmtp|support\.google\.com|gmail"), "Gmail"),
    (re.compile(r"outlook\.com|hotmail|\bs3[01]\d\d\b|sender support"), "Microsoft"),
    (re.compile(r"yahoo|\btss?\d\d\b"), "Yahoo"),
)
_MICROSOFT_CODE = re.compile(r"\b(s3140|s3150)\b")
_YAHOO_CODE = re.compile(r"\[?\b(tss04|ts0[1-3])\b\]?")
_STATUS_IN_TEXT = re.compile(r"(?<![\d.])[45]\.7\.(\d{1,3})(?![\d.]*\d)")

_BLOCKLIST_ZONE = re.compile(
    r"(?:blocked using|listed (?:at|on|in|by)|rbl|dnsbl)[:\s]+"
    r"([a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,})"
)
_BLOCKLIST_NAMES = (
    ("spamhaus", "Spamhaus"),
    ("spamcop", "SpamCop"),
    ("barracuda", "Barracuda"),
    ("sorbs", "SORBS"),
    ("uceprotect", "UCEPROTECT"),
    ("psbl", "PSBL"),
    ("mailspike", "Mailspike"),
    ("cloudmark", "Cloudmark"),
    ("spamrats", "SpamRATS"),
)
_BLOCKLIST_WORDS = re.compile(r"block ?list|black ?list|\brbl\b|dnsbl|blocked using")
_REVERSE_DNS = re.compile(
    r"reverse (?:dns|lookup|host ?name)|\bptr\b|rdns|dns pointer|ip name lookup failed"
)
_BLOCKED_WORD = re.compile(r"\bblock(?:ed)?\b")
# Greylisting (a first refusal that any sender gets) is often sent as
# 4.7.1, which alone would read as a block of the sender.
_GREYLISTED = re.compile(r"gr[ae]y ?list")


def sender_block(
    code: int | None, status: str | None, text: str, mx_host: str | None = None
) -> SenderBlock | None:
    """The block of the sender that a reply reports, or None for any other
    failure (an unknown user, a full mailbox, SPF or DKIM, content)."""
    lowered = text.lower()
    if _GREYLISTED.search(lowered):
        return None
    provider = provider_of(mx_host, lowered)
    provider_code, code_provider = _provider_code(status, lowered)
    provider = provider or code_provider
    blocklist = blocklist_named(lowered)

    parsed = EnhancedStatus.parse(status or "") or EnhancedStatus.parse(text)
    category = classify(code, parsed, text).category
    # Gmail words a sender block as "5.7.1 ... blocked"; a plain 5.7.1
    # elsewhere may be a relay or policy refusal, which classify tells.
    gmail_block = (
        provider == "Gmail"
        and parsed is not None
        and (parsed.subject, parsed.detail) == (7, 1)
        and _BLOCKED_WORD.search(lowered) is not None
    )
    if category is not Category.BLOCKED and provider_code is None and not gmail_block:
        return None

    if blocklist is not None or _BLOCKLIST_WORDS.search(lowered):
        kind = BlockKind.BLOCKLIST
    elif _REVERSE_DNS.search(lowered):
        kind = BlockKind.REVERSE_DNS
    elif provider_code is not None:
        kind = BlockKind.PROVIDER
    else:
        kind = BlockKind.REPUTATION
    return SenderBlock(kind, blocklist, provider, provider_code)


def provider_of(mx_host: str | None, text: str) -> str | None:
    """The mailbox provider behind an MX host or a (lower-case) reply."""
    host = (mx_host or "").lower().rstrip(".")
    for suffix, provider in _PROVIDER_MX:
        if host == suffix or host.endswith("." + suffix):
            return provider
    for pattern, provider in _PROVIDER_TEXT:
        if pattern.search(text):
            return provider
    return None


def blocklist_named(text: str) -> str | None:
    """The blocklist zone a (lower-case) reply names, else a known list's
    name, else None."""
    match = _BLOCKLIST_ZONE.search(text)
    if match is not None:
        return match[1]
    for word, name in _BLOCKLIST_NAMES:
        if word in text:
            return name
    return None


def _provider_code(status: str | None, text: str) -> tuple[str | None, str | None]:
    """A provider's block code in a reply, and the provider it belongs to."""
    if match := _MICROSOFT_CODE.search(text):
        return match[1].upper(), "Microsoft"
    if match := _YAHOO_CODE.search(text):
        return match[1].upper(), "Yahoo"
    details = [int(m[1]) for m in _STATUS_IN_TEXT.finditer(f"{status or ''} {text}")]
    for detail in details:
        # Exchange Online refuses banned or untrusted sending IPs and
        # tenants with 5.7.606 to 5.7.708.
        if 606 <= detail <= 708:
            return f"5.7.{detail}", "Microsoft"
        # Gmail: "unusual rate of unsolicited mail" from the IP or domain.
        if detail == 28:
            return "4.7.28", "Gmail"
    return None, None


def mx_domain(mx_host: str | None, address: str) -> str:
    """The registered domain of an MX host, roughly; the recipient's
    domain when no host answered or the host is an IP literal."""
    host = (mx_host or "").lower().strip("[]").rstrip(".")
    if not host or _is_ip(host):
        return address.rpartition("@")[2].lower()
    labels = host.split(".")
    # Without the public suffix list, "mx.example.co.uk" keeps three
    # labels when the second-level one is short, as country zones use.
    keep = 3 if len(labels) > 2 and len(labels[-1]) == 2 and len(labels[-2]) <= 3 else 2
    return ".".join(labels[-keep:])


def blocked_message(failure: Failure, subject: str = "") -> BlockedMessage | None:
    """The failure as a block of the sender, or None when it is not one."""
    block = sender_block(failure.code, failure.status, failure.text, failure.mx_host)
    if block is None:
        return None
    group = block.provider or mx_domain(failure.mx_host, failure.address)
    return BlockedMessage(failure, block, group, subject)


def group_blocks(blocked: list[BlockedMessage]) -> list[BlockGroup]:
    """The blocks grouped by provider or MX domain, largest group first."""
    by_key: dict[str, list[BlockedMessage]] = {}
    for message in blocked:
        by_key.setdefault(message.group, []).append(message)
    groups = [_group(key, members) for key, members in by_key.items()]
    groups.sort(key=lambda group: (-group.count, group.key))
    return groups


def reply_label(failure: Failure) -> str:
    """The basic and enhanced code of a reply, as in ``550 5.7.1``."""
    parts = [str(failure.code) if failure.code is not None else "", failure.status]
    return " ".join(part for part in parts if part) or "-"


def _group(key: str, members: list[BlockedMessage]) -> BlockGroup:
    failures = [member.failure for member in members]
    codes = Counter(reply_label(failure) for failure in failures)
    blocklists = {m.block.blocklist for m in members if m.block.blocklist}
    return BlockGroup(
        key=key,
        provider=members[0].block.provider,
        count=len(members),
        recipients=len({failure.address.lower() for failure in failures}),
        codes=tuple(sorted(codes.items(), key=lambda item: (-item[1], item[0]))),
        blocklists=tuple(sorted(blocklists)),
        campaigns=tuple(sorted({failure.campaign for failure in failures})),
        sample=" ".join(failures[0].text.split())[:300],
        first=min(failure.at for failure in failures),
        last=max(failure.at for failure in failures),
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
