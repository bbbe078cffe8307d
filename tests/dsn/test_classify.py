import pytest

from postroom.dsn.classify import Category, classify
from postroom.dsn.status import EnhancedStatus


@pytest.mark.parametrize(
    ("code", "status", "text", "category", "hard"),
    [
        (550, "5.1.1", "User unknown", Category.UNKNOWN_USER, True),
        (550, "5.1.2", "Host or domain name not found", Category.UNKNOWN_DOMAIN, True),
        (556, "5.1.10", "Recipient address has null MX", Category.UNKNOWN_DOMAIN, True),
        (550, "5.1.6", "Mailbox has moved", Category.MAILBOX_GONE, True),
        (552, "5.2.2", "Mailbox full", Category.MAILBOX_FULL, False),
        # What the delivery code records when no server answered at all.
        (
            None,
            None,
            "[Errno 111] Connect call failed ('192.0.2.1', 25)",
            Category.NETWORK,
            False,
        ),
        (
            550,
            "5.7.1",
            "Client host blocked using zen.spamhaus.org",
            Category.BLOCKED,
            False,
        ),
        (
            550,
            "5.7.26",
            "Unauthenticated email is not accepted due to DMARC",
            Category.POLICY,
            False,
        ),
        (550, "5.7.1", "Message rejected as spam", Category.SPAM, False),
        (
            421,
            "4.7.0",
            "Rate limit exceeded, try again later",
            Category.RATE_LIMITED,
            False,
        ),
        (None, "4.4.7", "", Category.EXPIRED, False),
        (
            550,
            "5.2.1",
            "The email account that you tried to reach is disabled",
            Category.MAILBOX_DISABLED,
            False,
        ),
        (554, None, "Relay access denied", Category.RELAY_DENIED, False),
        (550, None, "something went sideways", Category.OTHER, False),
        (450, None, "something went sideways", Category.TRANSIENT, False),
    ],
)
def test_classify_names_the_cause(
    code: int | None, status: str | None, text: str, category: Category, hard: bool
) -> None:
    parsed = EnhancedStatus.parse(status) if status else None

    verdict = classify(code, parsed, text)

    assert verdict.category is category
    assert verdict.hard is hard


def test_text_naming_another_cause_wins_over_the_code() -> None:
    verdict = classify(550, EnhancedStatus(5, 1, 1), "Too many messages, rate limit")

    assert verdict.category is Category.RATE_LIMITED
    assert verdict.hard is False


def test_temporary_unknown_user_is_not_hard() -> None:
    verdict = classify(450, EnhancedStatus(4, 1, 1), "User unknown")

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is False


def test_failed_action_makes_unknown_user_hard_whatever_the_class() -> None:
    verdict = classify(None, EnhancedStatus(4, 1, 1), "user unknown", permanent=True)

    assert verdict.hard is True


@pytest.mark.parametrize(
    ("status", "text", "category"),
    [
        ("5.4.1", "Recipient address rejected: Access denied", Category.UNKNOWN_USER),
        ("5.6.0", "Recipient address rejected: Media error", Category.CONTENT),
        ("5.7.0", "Recipient address rejected: No relaying", Category.RELAY_DENIED),
        (
            "5.7.26",
            "Recipient address rejected: Multiple authentication checks failed",
            Category.POLICY,
        ),
        ("5.7.13", "Disabled recipient address", Category.MAILBOX_DISABLED),
        (
            "5.1.7",
            "error after MAIL FROM:<a@example.com>: 550 5.1.7 No such domain",
            Category.SENDER_REJECTED,
        ),
        ("5.4.4", "Host or domain name not found", Category.UNKNOWN_DOMAIN),
        (None, "Host not found, try again", Category.NETWORK),
        (
            "5.7.1",
            "550-5.7.1 Messages with multiple 550 5.7.1 addresses in From:",
            Category.CONTENT,
        ),
        (None, "User not listed in Domino Directory", Category.UNKNOWN_USER),
        ("4.7.650", "temporarily rate limited due to IP reputation", Category.BLOCKED),
        (
            "5.1.1",
            'procmail: Couldn\'t create "/var/mail/who" id: mx: No such user',
            Category.SYSTEM,
        ),
        (
            None,
            "DNS lookup failure: host mx.example.net not found",
            Category.UNKNOWN_DOMAIN,
        ),
        (
            "4.0.0",
            "host mx.example.net[192.0.2.1] refused to talk to me: 421 Not now",
            Category.BLOCKED,
        ),
        (
            "4.3.0",
            "ORCPT=rfc822;who@example.net Out: 451 4.3.0 write error",
            Category.SYSTEM,
        ),
        (None, "Your message was not delivered within 2 days", Category.EXPIRED),
    ],
)
def test_wording_names_the_cause_before_the_code(
    status: str | None, text: str, category: Category
) -> None:
    parsed = EnhancedStatus.parse(status) if status else None

    verdict = classify(550, parsed, text)

    assert verdict.category is category


def test_unreachable_host_reported_final_is_expired_in_any_case() -> None:
    verdict = classify(421, None, "Error, 421, Host not reachable.", permanent=True)

    assert verdict.category is Category.EXPIRED


def test_connection_failure_reported_final_is_expired() -> None:
    text = "connect to mx.example.org[192.0.2.1]:25: Connection timed out"

    final = classify(None, EnhancedStatus(4, 4, 1), text, permanent=True)
    reply = classify(421, EnhancedStatus(4, 4, 1), text)

    assert final.category is Category.EXPIRED
    assert reply.category is Category.NETWORK


def test_every_ungated_text_rule_opens_each_alternative_with_a_literal() -> None:
    # The regex engine skips to the first characters of a pattern only when
    # each alternative opens with a literal; the rules' speed depends on it.
    from re import _constants as sre
    from re import _parser as sre_parse

    from postroom.dsn.classify import _TEXT_RULES

    for pattern, _category, gate in _TEXT_RULES:
        if gate is not None:
            continue
        first, value = sre_parse.parse(pattern.pattern).data[0]
        if first is sre.BRANCH:
            assert all(alt.data[0][0] is sre.LITERAL for alt in value[1]), pattern
        else:
            assert first is sre.LITERAL, pattern


def test_failed_sender_authentication_is_policy_even_if_called_access_denied() -> None:
    text = (
        "550 5.7.509 Access denied, sending domain [EXAMPLE.ORG] does not pass"
        " DMARC verification and has a DMARC policy of reject."
    )

    verdict = classify(550, EnhancedStatus(5, 7, 509), text)

    assert verdict.category is Category.POLICY


@pytest.mark.parametrize(
    ("code", "status", "text", "category"),
    [
        (550, "5.7.1", "Access denied", Category.SENDER_REJECTED),
        (
            550,
            None,
            "SMTP error from remote mail server after initial connection: "
            "550 Access denied",
            Category.BLOCKED,
        ),
        (
            554,
            None,
            "Message rejected: Email address is not verified. The following"
            " identities failed the check in region EU-WEST-1",
            Category.RELAY_DENIED,
        ),
        (
            None,
            "4.4.7",
            "Name server: example.net.: host name lookup failure. Message could"
            " not be delivered for 5 days",
            Category.NETWORK,
        ),
        (550, "5.4.312", "Message expired, DNS query failed", Category.NETWORK),
        (
            None,
            "4.4.3",
            "Unable to contact LDAP server. I'm not going to try again; this"
            " message has been in the queue too long.",
            Category.SYSTEM,
        ),
        (
            None,
            None,
            "Sorry, you are sending to/from an address that has been blacklisted",
            Category.SENDER_REJECTED,
        ),
        (
            450,
            None,
            "450 service permits 2 unverifyable sending IPs",
            Category.BLOCKED,
        ),
        (550, None, "domain [example.com] mismatches client ip", Category.BLOCKED),
        (500, None, "500 Line limit exceeded", Category.MESSAGE_TOO_LARGE),
        (500, None, "Remote server does not support TLS", Category.POLICY),
        (
            550,
            None,
            "Please turn on SMTP Authentication in your mail client",
            Category.POLICY,
        ),
        (
            None,
            "5.0.0",
            "local delivery program exited with status 75",
            Category.SYSTEM,
        ),
        (None, "4.3.0", "temporary failure", Category.SYSTEM),
        (
            None,
            None,
            "You are not a member of this mailing list <l@example.org>.",
            Category.SENDER_REJECTED,
        ),
        (
            None,
            "4.0.0",
            "DNS Error: the domain doesn't receive email: returned Null MX",
            Category.UNKNOWN_DOMAIN,
        ),
        (
            None,
            "5.0.0",
            "Action: failed Content-Type: message/rfc822",
            Category.OTHER,
        ),
        (
            None,
            None,
            "Your email was rejected due to spam classification. Set up SPF",
            Category.SPAM,
        ),
        (
            550,
            None,
            "550 ** No mail box available for this user **",
            Category.UNKNOWN_USER,
        ),
        (550, None, "550 BAD_RECIPIENT", Category.UNKNOWN_USER),
        (None, None, "is not an active address at this host", Category.UNKNOWN_USER),
        (550, None, "550 User not known", Category.UNKNOWN_USER),
        (
            None,
            None,
            "Does not have a final email delivery point",
            Category.UNKNOWN_USER,
        ),
        (None, None, "the account is exceeding their quota", Category.MAILBOX_FULL),
        (552, None, "552 Quota violation", Category.MAILBOX_FULL),
        (
            452,
            None,
            "User has too many messages on the server",
            Category.MAILBOX_FULL,
        ),
        (
            550,
            "5.1.1",
            "550 RCPT TO:<who@example.net> max message size exceeded",
            Category.MESSAGE_TOO_LARGE,
        ),
    ],
)
def test_classify_reads_the_wording_of_the_long_tail(
    code: int | None, status: str | None, text: str, category: Category
) -> None:
    parsed = EnhancedStatus.parse(status) if status else None

    verdict = classify(code, parsed, text)

    assert verdict.category is category


def test_refusal_by_recipient_preferences_is_policy_under_an_address_status() -> None:
    text = "550 5.1.1 RCP-P2 Refused due to recipient preferences"

    verdict = classify(550, EnhancedStatus(5, 1, 1), text)

    assert verdict.category is Category.POLICY
    assert verdict.hard is False
