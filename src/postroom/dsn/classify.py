"""What a failure means: a category in the domain's words and a verdict.

The taxonomy, from the address's fault to the moment's:

========================  ===================================================
category                  meaning
========================  ===================================================
``unknown_user``          no such mailbox at the domain (5.1.1)
``unknown_domain``        no such domain, or a domain that takes no mail:
                          null MX (RFC 7505), no MX and no address (5.1.2)
``mailbox_gone``          the mailbox existed and has moved or closed (5.1.6)
``mailbox_disabled``      the account is suspended or inactive for now
``mailbox_full``          over quota (5.2.2)
``message_too_large``     the message exceeds a size limit (5.2.3, 5.3.4)
``blocked``               the sending IP, host or domain is refused: a
                          blocklist, bad reputation, no reverse DNS
``policy``                authentication and policy: SPF, DKIM, DMARC,
                          TLS required, a local policy rule (5.7.x)
``spam``                  the content was judged spam or a virus
``content``               the message is malformed or breaks RFC 5322
``sender_rejected``       the envelope sender was refused (5.1.7, 5.1.8),
                          a bare "access denied" after the connection was
                          accepted, a list refusing a non-member's post
``relay_denied``          the server will not relay for us (5.7.1 relay),
                          or not from an identity it has not verified
``rate_limited``          too many messages or connections, slow down
``network``               connection, DNS or routing trouble on the way; a
                          named DNS failure even when retries ran out
``system``                the receiving system failed or is full, or a
                          local delivery program exited with an error
``expired``               retries ran out before delivery (4.4.7)
``complaint``             the recipient reported the message (RFC 5965)
``auto_reply``            an automatic reply, not a failure (RFC 3834)
``transient``             a temporary failure with no better name
``other``                 a failure whose cause cannot be told
========================  ===================================================

``hard`` means the address itself is bad (unknown user, unknown domain,
mailbox gone) and the failure is permanent, so the address may be
suppressed. Every other category is the sender's or the moment's problem.

The text of a reply is stronger evidence than its code: servers send
``550 5.1.1`` for rate limits and ``550 5.0.0`` for unknown users, so the
category is read from the text first and from the code after.

An "unknown user" refusal is only proof that the address is bad when it
answers RCPT TO, the command that names the address (RFC 5321 section
3.3). A server that accepted the recipient and refused only after DATA
judged the message, not the address: filtering gateways answer a message
they dislike with the same words. Suppressing a real person for it would
cost a respondent, so such a refusal is ``policy`` and not hard. Wording
that only a refusal of RCPT TO has (Postfix's "Recipient address
rejected") keeps the address at fault whatever stage a report names, and
so does a provider's own statement that it has no such account ("This
user doesn't have a yahoo.com account": Yahoo refuses unknown users after
DATA). A reply whose slot for the address is empty ("550 : User unknown")
answered DATA, where there is no recipient to name.

When no stage is named, the enhanced status decides. A code of the
address subject (X.1.X, RFC 3463 section 3.2) confirms the wording. A
code that names another subject, a mailbox that will not take mail
(X.2.X), the mail system (X.3.X) or policy (X.7.X), contradicts it: the
server refused this message, so the refusal is ``policy`` and not hard.
With no code, or only a generic ``X.0.0``, the wording stands.

A delay notice (RFC 3464 Action ``delayed``) is not an expiry: the
reporting server is still retrying and may yet deliver, so its record
keeps the ``delayed`` action and a category read from its cause
(``transient`` when none is named). ``expired`` is kept for reports that
say the retries ran out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from postroom.dsn.status import EnhancedStatus


class Category(StrEnum):
    """Why a message was not delivered."""

    UNKNOWN_USER = "unknown_user"
    UNKNOWN_DOMAIN = "unknown_domain"
    MAILBOX_GONE = "mailbox_gone"
    MAILBOX_DISABLED = "mailbox_disabled"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    BLOCKED = "blocked"
    POLICY = "policy"
    SPAM = "spam"
    CONTENT = "content"
    SENDER_REJECTED = "sender_rejected"
    RELAY_DENIED = "relay_denied"
    RATE_LIMITED = "rate_limited"
    NETWORK = "network"
    SYSTEM = "system"
    EXPIRED = "expired"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    TRANSIENT = "transient"
    OTHER = "other"


HARD_CATEGORIES = frozenset(
    {Category.UNKNOWN_USER, Category.UNKNOWN_DOMAIN, Category.MAILBOX_GONE}
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A category, and whether the address itself is bad."""

    category: Category
    hard: bool


# Order matters: the first rule that matches wins, so the specific causes
# that servers like to word vaguely ("rejected", "not accepted") come
# before the broad ones. Patterns are lower case and matched against
# lowered text: IGNORECASE makes these alternations several times slower.
#
# Every alternative opens with a literal character, never a group, a class,
# \b or a lookbehind: the regex engine then skips straight to the positions
# where one of those first characters occurs, instead of trying every
# alternative at every position. A word boundary or a negative lookbehind
# goes after the first character, as in "s(?<!\ws)pf\b" for "\bspf\b".
# A rule with a gate is only tried when its gate occurs in the text.
_RULES: tuple[tuple[str, Category, str | None], ...] = (
    # Exchange Online's directory-based edge blocking refuses addresses
    # its directory lacks with "Access denied" (5.4.1): no such user.
    (
        r"recipient address rejected: access denied|recipient not found"
        r"|not listed in (?:the )?(?:domino directory|public name)",
        Category.UNKNOWN_USER,
        None,
    ),
    # An address "on hold" is neither known bad nor refused for a named
    # cause: the refusal prefix around it must not make it an unknown user.
    (r"rejected: on hold", Category.OTHER, "on hold"),
    # Malformed messages are often refused with spam or DKIM in the
    # same sentence; the malformation is the cause.
    (
        r"not rfc ?5322 compliant|multiple addresses in from|duplicate header"
        r"|headers? too (?:large|long)|media error|header (?:is )?(?:missing"
        r"|invalid)|missing (?:message-id|date|from)|malformed (?:message"
        r"|header|mime)",
        Category.CONTENT,
        None,
    ),
    (r"blacklisted (?:url|link)|uribl|surbl", Category.SPAM, None),
    # A spam verdict stated as the reason outranks the SPF or DKIM advice
    # that follows it.
    (
        r"due to spam|spam classification|flagged as spam|classified as spam"
        r"|spamsignature|spam signature",
        Category.SPAM,
        "spam",
    ),
    # A local delivery program (procmail, maildrop, or one known only by its
    # exit status) that fails reports its own trouble, even in words about a
    # user it could not switch to; so does a server that cannot reach its
    # own directory or load its own data, and a list manager's loop guard.
    # The rarer causes sit behind gates of their own words.
    (r"procmail: |maildrop: |/procmail ", Category.SYSTEM, None),
    (r"local delivery program", Category.SYSTEM, "local delivery program"),
    (r"ldap server", Category.SYSTEM, "ldap server"),
    (r"could not load", Category.SYSTEM, "could not load"),
    (r"duplicated message-id", Category.SYSTEM, "duplicated message-id"),
    # A null MX (RFC 7505) is the domain's own statement that it takes no
    # mail, however the lookup that found it is worded.
    (r"null mx", Category.UNKNOWN_DOMAIN, "null mx"),
    # An address, not an IP, on a blocklist refuses the sender.
    (r"address that has been blacklisted", Category.SENDER_REJECTED, "blacklisted"),
    # A failed sender authentication (SPF, DKIM, DMARC: RFC 7208, 6376,
    # 7489) names the cause more precisely than the "access denied" or
    # "blocked" that servers wrap it in.
    (
        r"s(?<!\ws)pf (?:check|record|verification|fail)|d(?<!\wd)kim (?:check"
        r"|verification|fail)|does not pass dmarc|dmarc (?:policy|check"
        r"|verification|fail)|sender is unauthenticated|sender policy framework",
        Category.POLICY,
        None,
    ),
    (
        r"reverse (?:dns|lookup)|p(?<!\wp)tr\b|no rdns|rdns|dns pointer"
        r"|blocklist|blacklist|block ?list|black ?list|spamhaus|spamcop"
        r"|barracuda|sorbs|r(?<!\wr)bl\b|dnsbl|reputation|blocked using"
        r"|l(?<!not l)isted (?:at|on|in)|user complaints|unexpected volume"
        r"|ip (?:address )?(?:is )?(?:blocked|banned)|client host .*blocked"
        r"|client host rejected|blocked (?:by|for)|invalid ip|your isp"
        r"|poor sending|has been blocked|connection refused by"
        r"|not allowed to send|service refused?\b|not accepting connections"
        r"|too many unwanted|dynamic ip|dial-?up"
        r"|banned|my name was rejected|unverif(?:i|y)able sending ip"
        r"|ip name lookup failed|refused to talk to me|mismatches client ip"
        # Denied before any command: the connecting client is refused.
        r"|initial connection: [^a-z]{0,20}access denied",
        Category.BLOCKED,
        None,
    ),
    # A mailbox holding too many messages is full, not a sender too fast.
    (
        r"too many messages (?:on the server|in (?:the |this |your |his |her )?"
        r"mail ?box)",
        Category.MAILBOX_FULL,
        "too many messages",
    ),
    (
        r"frequency limit|rate limit|too many (?:messages|connections"
        r"|recipients|emails|mails|sessions)|throttl|slow down|exceeded the"
        r" (?:rate|daily)|too fast|at a rate that|too many concurrent"
        r"|connection rate",
        Category.RATE_LIMITED,
        None,
    ),
    (
        r"s(?<!\ws)pf\b|d(?<!\wd)kim\b|d(?<!\wd)marc\b|sender policy framework"
        r"|not authenticated|unauthenticated|authentication (?:failed|required"
        r"|checks? failed)|authentication information"
        r"|starttls|must use tls|tls required|encryption required|support tls"
        r"|smtp authentication|without authentication"
        r"|for policy reasons|policy violation|protocol violation|not authorized",
        Category.POLICY,
        None,
    ),
    (
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)"
        r"|not permitted to relay|unable to relay|we do not relay|no relaying"
        r"|relay not allowed|not allowed to relay|not configured to relay"
        r"|relay through this server",
        Category.RELAY_DENIED,
        None,
    ),
    # A sending service that will not send from an identity (an address or
    # domain) its owner has not verified.
    (r"address is not verified", Category.RELAY_DENIED, "not verified"),
    (
        r"virus|malware|trojan|worm\b|s(?<!\ws)pam\b|spam message|unsolicited"
        r"|considered spam|junk mail|looks like spam|content (?:was )?rejected"
        r"|message content|bulk mail|phish",
        Category.SPAM,
        None,
    ),
    (
        r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the|his"
        r"|her) .*quota|insufficient (?:storage|space)|mail ?box.*(?:full"
        r"|exceed)|storage (?:space )?(?:is )?full|out of storage"
        r"|user.*over.*(?:quota|limit)|full mailbox|mailfolder is full"
        r"|disk quota|exceeding (?:the|their|his|her|its) quota|quota violation",
        Category.MAILBOX_FULL,
        None,
    ),
    (
        r"message (?:size|length) exceeds|too large|too big|size limit"
        r"|exceeds.*size|message is larger|maximum (?:message )?size"
        r"|max message size|size exceeded",
        Category.MESSAGE_TOO_LARGE,
        None,
    ),
    (r"line limit exceeded", Category.MESSAGE_TOO_LARGE, "line limit"),
    (
        r"after mail from|sender (?:address )?(?:was )?(?:rejected|refused|denied"
        r"|verify failed|invalid|domain)|mail from .*(?:rejected|refused)"
        r"|domain of sender|sender .*(?:not|does not) (?:exist|resolve)"
        r"|bad sender|invalid sender|envelope sender|return path"
        r"|purported responsible address|from: domain is invalid"
        r"|not permitted to post|permission to post"
        # A list manager refusing a post from someone not subscribed.
        r"|not a member of|non-member"
        # "Access denied" with nothing naming the address, the IP or a
        # policy refuses who is sending: the envelope sender.
        r"|a(?<!relay a)ccess denied",
        Category.SENDER_REJECTED,
        None,
    ),
    (
        r"account (?:is |has been )?(?:disabled|suspended|inactive|deactivated"
        r"|locked|frozen|blocked)"
        r"|mailbox (?:is |has been )?(?:disabled|suspended|inactive|deactivated"
        r"|locked|frozen|blocked)"
        r"|user (?:is |has been )?(?:disabled|suspended|inactive|deactivated"
        r"|locked|frozen|blocked)"
        r"|address (?:is |has been )?(?:disabled|suspended|inactive|deactivated"
        r"|locked|frozen|blocked)"
        r"|inactive (?:user|account)|not active|expired account"
        r"|account (?:is )?expired|disabled (?:recipient|mailbox|account"
        r"|user|address)|temporarily locked|temporary locked",
        Category.MAILBOX_DISABLED,
        None,
    ),
    (
        r"has moved|moved to|no longer (?:available|active|exists|valid"
        r"|in use)|mailbox (?:has been )?(?:deleted|closed|removed)"
        r"|account (?:has been )?(?:deleted|closed|removed)",
        Category.MAILBOX_GONE,
        None,
    ),
    # A temporary name-service failure says nothing about the domain; a
    # named one is the cause even when the report goes on to say the
    # retries ran out.
    (
        r"host not found, try again|no route to host"
        r"|temporary dns|dns (?:error|failure)|host name lookup failure"
        r"|dns query failed",
        Category.NETWORK,
        None,
    ),
    (
        r"host (?:or domain name )?not found|domain (?:not found"
        r"|does not exist|name not found)|unknown domain|no mx|null mx"
        r"|nxdomain|domain .*(?:does not|doesn't) accept mail"
        r"|does not accept mail|unrouteable|name or service not known"
        r"|no such domain|domain is not|bad domain|host unknown|unknown host"
        r"|mx (?:record )?lookup|bad destination system|no smtp service"
        r"|not accepting network messages|dns lookup failure: host",
        Category.UNKNOWN_DOMAIN,
        None,
    ),
    # "mx.example.net does not exist": a host name, not a mailbox. No
    # literal can open it, so it is only tried when its verb is there.
    (
        r"(?<![@\w.-])[\w-]+(?:\.[\w-]+)+ does not exist",
        Category.UNKNOWN_DOMAIN,
        " does not exist",
    ),
    (
        r"user ?unknown|unknown (?:user|recipient|mailbox|address|local)"
        r"|no such (?:user|mailbox|recipient|address|person|account)"
        r"|does ?n[o']t exist|not exist|invalid (?:recipient|mailbox|address"
        r"|user)|user (?:not found|doesn't|does not)|mailbox (?:not found"
        r"|unavailable|does not)|not a valid (?:mailbox|recipient|user)"
        r"|unknown or illegal|addressee unknown|no mailbox"
        r"|recipient (?:not found|unknown|invalid)|bad recipient"
        r"|undeliverable address|no valid recipients?|account (?:not found"
        r"|does not)|dosn't exist|is not a known user|no account by that name"
        r"|mailbox not present|user not exist|unknown account"
        r"|address (?:does not|doesn't) exist|could ?n[o']t be found"
        r"|could not be found|invalid final delivery|bad destination mailbox"
        r"|check if (?:the )?address is correct|no mail ?box available"
        r"|bad_recipient|not an active address|user not known"
        r"|mail-box not found|final (?:e-?mail )?delivery point",
        Category.UNKNOWN_USER,
        None,
    ),
    (
        r"retry time(?:out)? (?:not reached|exceeded)"
        r"|timeout exceeded|message expired|delivery time expired"
        r"|too long in (?:the )?queue|in the queue too long|been delayed for"
        r"|could not be delivered (?:for|within)|giving up|maximum time"
        r"|time ?out in queue|queue ?time|expired|failing for a long time"
        r"|failed \d+ attempts|retried for|continue trying for|not delivered within"
        r"|undeliverable for \d",
        Category.EXPIRED,
        None,
    ),
    (
        r"connection (?:timed out|refused|reset|lost|closed)|timed out"
        r"|network (?:is )?unreachable|could not connect|unable to connect"
        r"|lost connection|name server|host not reachable|mail loop"
        r"|loops back|routing loop|network error|requests to connect"
        r"|establish an smtp connection|socket error|connect call failed",
        Category.NETWORK,
        None,
    ),
    (
        r"malformed|syntax error|rfc ?5322(?!;)|rfc ?2822(?!;)|r(?<!/r)fc ?822(?!;)"
        r"|invalid (?:header"
        r"|message|mime)|8-?bit|line too long|not rfc",
        Category.CONTENT,
        None,
    ),
    (
        r"system (?:error|failure|full)|internal (?:server |system )?error"
        r"|local error|disk full|out of memory|resources|configuration error"
        r"|mailer error|temporary local problem|i/o error|write error"
        r"|server (?:is )?(?:busy|unavailable)|service (?:currently )?unavailable"
        r"|disk space|upstream error|transaction failed|pipe to \|",
        Category.SYSTEM,
        None,
    ),
    (
        r"p(?<!\wp)olicy\b|not allowed|prohibited|refused by .*filter"
        r"|rejected by .*filter|administrative|f(?<!\wf)iltered\b",
        Category.POLICY,
        None,
    ),
    # The recipient's own settings refuse the sender: a filter's verdict,
    # even under an address status (Facebook words it "Refused due to
    # recipient preferences" with 5.1.1).
    (r"email preferences of|recipient preferences", Category.POLICY, "preferences"),
    # Postfix prefixes every recipient refusal with these words; they
    # name a bad address only when nothing above named another cause.
    (r"recipient address rejected|address rejected", Category.UNKNOWN_USER, None),
    # Refused before any command was sent: the client itself is refused.
    (r"after initial connection", Category.BLOCKED, None),
)
_TEXT_RULES: tuple[tuple[re.Pattern[str], Category, str | None], ...] = tuple(
    (re.compile(pattern), category, gate) for pattern, category, gate in _RULES
)
# A failure that can only be temporary, reported as final: the reporting
# server retried until its time ran out (RFC 3464 section 2.3.3, a
# "failed" action with a persistent transient status).
_UNREACHABLE = re.compile(
    r"timed out|requests to connect|could not connect|unable to connect"
    r"|establish an smtp connection|host not reachable|connection refused"
)
# Wording that places a refusal after DATA (RFC 5321 section 3.3): Postfix's
# "in reply to end of DATA command", Exim's "after end of data", or a
# gateway's "SMTP command: DATA" field.
_AFTER_DATA = re.compile(
    r"end of data\b|after data\b|reply to data\b|smtp command\W{1,20}data\b"
)
# Wording that places a refusal at RCPT TO: Postfix's "in reply to RCPT TO
# command", Exim's "after RCPT TO", qmail's "does not like recipient",
# Ipswitch IMail's "RCPT TO generated following response", and
# the stage fields of gateways and web mail ("SMTP:RCPT", "[RCPT_TO]").
_AFTER_RCPT = re.compile(
    r"reply to rcpt\b|after rcpt\b|like our rcpt\b|smtp:rcpt\b|\[rcpt_to\]"
    r"|does not like recipient|rcpt to generated"
)
# A reply to DATA has no recipient to name, so a server whose refusal
# template has a slot for the address leaves it empty: "550 : User
# unknown", "550: : User unknown", "550 <>: User unknown". au (KDDI) answers
# this way when the recipient's reception filter refuses the sender, and
# with the address filled in when the mailbox does not exist.
_EMPTY_SLOT = re.compile(r"(?<!\d)[45]\d\d:? (?:<>)?: ?user unknown")
# The mailbox provider's own statement that it has no account of that name:
# Yahoo refuses unknown users after DATA with these words, which no content
# filter writes ("554 delivery error: dd This user doesn't have a yahoo.com
# account").
_NO_ACCOUNT = re.compile(r"doe(?:sn't|s not) have an? [\w.-]+ account")
# Status subjects that name a cause other than the address (RFC 3463).
_OTHER_SUBJECTS = frozenset({2, 3, 7})
# The continuation prefix of a multi-line reply quoted inside the text.
_CONTINUATION = re.compile(r"\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")

_MAX_TEXT = 800

_STATUS_RULES: dict[tuple[int, int], Category] = {
    (1, 1): Category.UNKNOWN_USER,
    (1, 2): Category.UNKNOWN_DOMAIN,
    (1, 3): Category.UNKNOWN_USER,
    (1, 6): Category.MAILBOX_GONE,
    (1, 7): Category.SENDER_REJECTED,
    (1, 8): Category.SENDER_REJECTED,
    (1, 10): Category.UNKNOWN_DOMAIN,
    (2, 1): Category.MAILBOX_DISABLED,
    (2, 2): Category.MAILBOX_FULL,
    (2, 3): Category.MESSAGE_TOO_LARGE,
    (3, 0): Category.SYSTEM,
    (3, 1): Category.SYSTEM,
    (3, 4): Category.MESSAGE_TOO_LARGE,
    (3, 5): Category.SYSTEM,
    (4, 1): Category.NETWORK,
    (4, 2): Category.NETWORK,
    (4, 3): Category.NETWORK,
    (4, 4): Category.UNKNOWN_DOMAIN,
    (4, 6): Category.NETWORK,
    (4, 7): Category.EXPIRED,
    (5, 3): Category.RATE_LIMITED,
    (6, 0): Category.CONTENT,
    (7, 1): Category.BLOCKED,
    (7, 7): Category.CONTENT,
    (7, 9): Category.POLICY,
    (7, 13): Category.MAILBOX_DISABLED,
    (7, 23): Category.POLICY,
    (7, 24): Category.POLICY,
    (7, 25): Category.BLOCKED,
    (7, 26): Category.POLICY,
    (7, 27): Category.UNKNOWN_DOMAIN,
}


def classify(
    code: int | None,
    status: EnhancedStatus | None,
    text: str,
    *,
    permanent: bool | None = None,
    after_data: bool | None = None,
    after_rcpt: bool | None = None,
) -> Verdict:
    """Name the cause of a failure from its reply code, status and text.

    ``permanent`` overrides what the code and status say about
    permanence; a DSN whose Action is ``failed`` is permanent whatever
    class its status has (RFC 3464 section 2.3.3). ``after_data`` says
    the refusal answered DATA or the end of the message rather than RCPT;
    when None it is read from the text. ``after_rcpt`` says it answered
    RCPT TO, the same way.
    """
    category = category_from_text(text)
    if category is Category.UNKNOWN_USER:
        category = _unknown_user_or_not(text, status, after_data, after_rcpt)
    if category is None and status is not None:
        category = _STATUS_RULES.get((status.subject, status.detail))
        if category is None and status.subject == 7:
            category = Category.POLICY
    if category is None:
        transient = (code is not None and 400 <= code < 500) or (
            status is not None and status.klass == 4
        )
        category = Category.TRANSIENT if transient else Category.OTHER

    if permanent is None:
        permanent = (code is not None and code >= 500) or (
            status is not None and status.klass == 5
        )
    elif (
        permanent
        and category is Category.NETWORK
        and _UNREACHABLE.search(text[:_MAX_TEXT].lower())
    ):
        # A host that could not be reached is never a final failure in
        # itself: the reporting server retried until its time ran out.
        category = Category.EXPIRED
    return Verdict(category, category in HARD_CATEGORIES and permanent)


def _unknown_user_or_not(
    text: str,
    status: EnhancedStatus | None,
    after_data: bool | None,
    after_rcpt: bool | None,
) -> Category:
    """Whether an "unknown user" wording really says the address is bad."""
    lowered = text[:_MAX_TEXT].lower()
    if "recipient address rejected" in lowered:
        return Category.UNKNOWN_USER
    if "have a" in lowered and _NO_ACCOUNT.search(lowered):
        return Category.UNKNOWN_USER
    if after_data is None:
        after_data = (
            _AFTER_DATA.search(lowered) is not None
            or _EMPTY_SLOT.search(lowered) is not None
        )
    if after_data:
        return Category.POLICY
    if after_rcpt is None:
        after_rcpt = _AFTER_RCPT.search(lowered) is not None
    if after_rcpt or status is None or status.klass == 2:
        return Category.UNKNOWN_USER
    if status.subject in _OTHER_SUBJECTS:
        return Category.POLICY
    return Category.UNKNOWN_USER


def category_from_text(text: str) -> Category | None:
    """The category that the wording of a reply names, or None."""
    text = text[:_MAX_TEXT].lower()
    if "-5." in text or "-4." in text:
        text = _CONTINUATION.sub("", text)
    for pattern, category, gate in _TEXT_RULES:
        if (gate is None or gate in text) and pattern.search(text):
            return category
    return None
