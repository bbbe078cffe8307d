"""The machine-readable part of a standard DSN (RFC 3464 section 2).

A ``message/delivery-status`` body is groups of header-style fields
separated by empty lines: one per-message group (Reporting-MTA,
Arrival-Date, ...) then one group per recipient (Final-Recipient, Action,
Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date, ...). RFC 6533
section 6 adds ``message/global-delivery-status``, the same grammar in
UTF-8. Several fields are typed, ``type ; value``: the address type
(``rfc822;``) and the diagnostic type (``smtp;``) are dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.dsn.mime import parse_headers


@dataclass(frozen=True, slots=True)
class RecipientFields:
    """The fields of one per-recipient group, typed prefixes removed."""

    final_recipient: str | None
    original_recipient: str | None
    action: str | None
    status: str | None
    remote_mta: str | None
    diagnostic: str | None
    last_attempt: str | None


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """A parsed delivery-status body."""

    reporting_mta: str | None
    arrival_date: str | None
    recipients: tuple[RecipientFields, ...]


def parse_delivery_status(text: str) -> DeliveryStatus:
    """Read the field groups of a delivery-status body.

    Lenient by design: blank lines that merely separate folded parts of
    one group are tolerated, because a group starts only at a field that
    names a recipient, and fields outside any group go to the
    per-message group.
    """
    fields = parse_headers(text.replace("\r", ""))
    per_message: dict[str, str] = {}
    groups: list[dict[str, str]] = []
    for name, value in fields:
        key = name.lower()
        if _starts_group(key, groups):
            groups.append({})
        target = groups[-1] if groups else per_message
        target.setdefault(key, value)
    if groups:
        # Some writers (Facebook) put a recipient's Diagnostic-Code and
        # Status before its Final-Recipient: fields that only a recipient
        # has, found before the first group, belong to it.
        for key in _RECIPIENT_ONLY.intersection(per_message):
            groups[0].setdefault(key, per_message[key])
    recipients = tuple(
        _recipient(group) for group in groups if "final-recipient" in group
    )
    return DeliveryStatus(
        per_message.get("reporting-mta"),
        per_message.get("arrival-date"),
        recipients,
    )


# Fields of a per-recipient group that a per-message group never has
# (RFC 3464 sections 2.2 and 2.3).
_RECIPIENT_ONLY = frozenset(
    {"action", "status", "diagnostic-code", "remote-mta", "last-attempt-date"}
)


def _starts_group(key: str, groups: list[dict[str, str]]) -> bool:
    """Whether a field opens a new per-recipient group (RFC 3464 2.3).

    Original-Recipient and Final-Recipient come first in a group, in
    either order; either one opens a new group unless it completes the
    pair that the current group has just begun.
    """
    if key not in ("original-recipient", "final-recipient"):
        return False
    if not groups or key in groups[-1]:
        return True
    return any(
        name not in ("original-recipient", "final-recipient") for name in groups[-1]
    )


def _recipient(group: dict[str, str]) -> RecipientFields:
    return RecipientFields(
        final_recipient=_address(group.get("final-recipient")),
        original_recipient=_address(group.get("original-recipient")),
        action=(group.get("action") or "").strip().lower() or None,
        status=group.get("status"),
        remote_mta=_typed(group.get("remote-mta")),
        diagnostic=_diagnostic(group.get("diagnostic-code")),
        last_attempt=group.get("last-attempt-date") or group.get("arrival-date"),
    )


def strip_type(value: str) -> str:
    """``smtp; 550 ...`` -> ``550 ...``; a value without a type is kept."""
    head, separator, rest = value.partition(";")
    if separator and head.strip() and " " not in head.strip() and len(head) < 20:
        return rest.strip()
    return value.strip()


def _typed(value: str | None) -> str | None:
    if value is None:
        return None
    # One space between words: a folded value keeps its continuation's indent.
    return " ".join(strip_type(value).split()) or None


def _diagnostic(value: str | None) -> str | None:
    text = _typed(value)
    if text is not None and text.isdigit() and value is not None:
        # An X-Unix diagnostic that is only a number is the exit status of
        # a local delivery program (sysexits.h): say so, or the number alone
        # reads as nothing.
        return f"local delivery program exited with status {text}"
    return text


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    address = strip_type(value).strip().strip("<>").strip()
    return address or None
