"""Which replies are blocks of the sender, what they name, and the days
and windows the scan reads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from postroom.blacklist_monitor.evidence import (
    BlockKind,
    blocked_message,
    group_blocks,
    mx_domain,
    sender_block,
)
from postroom.blacklist_monitor.scan import day_window, report_day
from postroom.queue.models import Failure

GMAIL = "gmail-smtp-in.l.google.com"


@pytest.mark.parametrize(
    ("code", "status", "text", "mx", "kind", "blocklist", "provider", "provider_code"),
    [
        (
            554, "5.7.1",
            "554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using "
            "zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.9",
            None, BlockKind.BLOCKLIST, "zen.spamhaus.org", None, None,
        ),
        (
            550, "5.7.1",
            "550 5.7.1 Rejected because 192.0.2.9 is in a black list at "
            "b.barracudacentral.org",
            None, BlockKind.BLOCKLIST, "Barracuda", None, None,
        ),
        (
            550, "5.7.1",
            "550 5.7.1 Unfortunately, messages from [192.0.2.9] weren't sent. Please "
            "contact your Internet service provider since part of their network is "
            "on our block list (S3150).",
            "example-com.mail.protection.outlook.com",
            BlockKind.BLOCKLIST, None, "Microsoft", "S3150",
        ),
        (
            550, "5.7.606",
            "550 5.7.606 Access denied, banned sending IP [192.0.2.9].",
            None, BlockKind.PROVIDER, None, "Microsoft", "5.7.606",
        ),
        (
            550, "5.7.708",
            "550 5.7.708 Service unavailable. Access denied, traffic not accepted "
            "from this IP.",
            None, BlockKind.PROVIDER, None, "Microsoft", "5.7.708",
        ),
        (
            421, "4.7.0",
            "421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to "
            "unexpected volume or user complaints",
            "mta5.am0.yahoodns.net", BlockKind.PROVIDER, None, "Yahoo", "TSS04",
        ),
        (
            553, "5.7.1",
            "553 5.7.1 [TS03] All messages from 192.0.2.9 will be permanently "
            "deferred; Retrying will NOT succeed.",
            None, BlockKind.PROVIDER, None, "Yahoo", "TS03",
        ),
        (
            421, "4.7.28",
            "421-4.7.28 Our system has detected an unusual rate of unsolicited mail\\n"
            "421 4.7.28 originating from your IP address. gsmtp",
            GMAIL, BlockKind.PROVIDER, None, "Gmail", "4.7.28",
        ),
        (
            550, "5.7.1",
            "550-5.7.1 Our system has detected that this message is likely "
            "suspicious due to the very low reputation of the sending IP address",
            GMAIL, BlockKind.REPUTATION, None, "Gmail", None,
        ),
        (
            550, "5.7.1",
            "550 5.7.1 Client host rejected: cannot find your reverse hostname, "
            "[192.0.2.9]",
            None, BlockKind.REVERSE_DNS, None, None, None,
        ),
    ],
)  # fmt: skip
def test_blocks_of_the_sender_are_recognised_with_their_list_and_provider(
    code: int,
    status: str,
    text: str,
    mx: str | None,
    kind: BlockKind,
    blocklist: str | None,
    provider: str | None,
    provider_code: str | None,
) -> None:
    block = sender_block(code, status, text, mx)

    assert block is not None
    assert block.kind is kind
    assert block.blocklist == blocklist
    assert block.provider == provider
    assert block.provider_code == provider_code


@pytest.mark.parametrize(
    ("code", "status", "text", "mx"),
    [
        (550, "5.1.1", "550 5.1.1 The email account does not exist.", GMAIL),
        (
            550, "5.7.26",
            "550-5.7.26 Unauthenticated email from example.org is not accepted due "
            "to domain's DMARC policy. gsmtp",
            GMAIL,
        ),
        (550, "5.7.1", "550 5.7.1 Relaying denied", None),
        (552, "5.2.2", "552 5.2.2 Mailbox full", None),
        (451, "4.7.1", "451 4.7.1 Greylisted, please come back later", None),
    ],
)  # fmt: skip
def test_failures_that_are_not_the_senders_fault_are_not_blocks(
    code: int, status: str, text: str, mx: str | None
) -> None:
    assert sender_block(code, status, text, mx) is None


def test_mx_domain_is_the_registered_domain_or_the_recipients_for_ip_hosts() -> None:
    assert mx_domain("mx2.mail.example.co.uk.", "a@b.example") == "example.co.uk"
    assert mx_domain("Gmail-SMTP-in.l.Google.com", "a@b.example") == "google.com"
    assert mx_domain("127.0.0.1", "a@Dest.Example") == "dest.example"
    assert mx_domain(None, "a@dest.example") == "dest.example"


def test_blocks_are_grouped_by_provider_counted_and_timed() -> None:
    def failure(address: str, hour: int, text: str, mx: str) -> Failure:
        at = datetime(2026, 1, 5, hour, tzinfo=UTC)
        return Failure("attempt", at, address, "c1", "Q", mx, 550, "5.7.1", text)

    spamhaus = "550 5.7.1 blocked using zen.spamhaus.org"
    found = [
        blocked_message(failure("a@x.example", 9, spamhaus, "mx.x.example")),
        blocked_message(failure("b@x.example", 11, spamhaus, "mx2.x.example")),
        blocked_message(failure("c@y.example", 10, "550 5.1.1 no such user", "mx")),
    ]

    [group] = group_blocks([b for b in found if b is not None])

    assert found[2] is None
    assert (group.key, group.count, group.recipients) == ("x.example", 2, 2)
    assert group.codes == (("550 5.7.1", 2),)
    assert group.first.hour == 9
    assert group.last.hour == 11


def test_the_default_day_is_yesterday_in_the_configured_zone() -> None:
    now = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # 00:30 on the 6th in Berlin

    assert report_day(now, "UTC") == date(2026, 1, 4)
    assert report_day(now, "Europe/Berlin") == date(2026, 1, 5)


def test_a_day_runs_midnight_to_midnight_in_its_zone_across_a_dst_change() -> None:
    since, until = day_window(date(2026, 3, 29), "Europe/Berlin")

    assert since.astimezone(UTC) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert (until - since).total_seconds() == 23 * 3600
