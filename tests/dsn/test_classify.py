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
