"""Content-filtering gateways: appliances and hosted filters in front of
a mail server (McAfee, SurfControl, MXLogic, MailFoundry).

A gateway accepts the message, scans it, and refuses what its rules
dislike, often with the same "unknown user" words a mailbox server uses
for a missing address. A refusal the gateway writes is its verdict on the
message, not proof that the address is bad. Only a status of the address
subject (X.1.X, RFC 3463 section 3.2), relayed from the mail server
behind it, names the address.

The gateways are told apart by the header fields and trace lines they
stamp on their own bounces, never by the wording of a refusal.
"""

from __future__ import annotations

from postroom.dsn.view import MessageView

# (field, lower-case phrase in its value, product).
_STAMPS = (
    ("X-NAI-Header", "mcafee", "mcafee"),
    ("X-Mailer", "surfcontrol", "surfcontrol"),
    ("X-SEF-Processed", "", "surfcontrol"),
    ("Message-ID", "mxlogic.net", "mxlogic"),
    ("From", "mxlogic.net", "mxlogic"),
    ("Received", "(mailfoundry)", "mailfoundry"),
)


def filtering_gateway(view: MessageView) -> str | None:
    """The filtering gateway that wrote this bounce, or None."""
    top = view.top
    for field, phrase, product in _STAMPS:
        for value in top.get_all(field):
            if phrase in value.lower():
                return product
    return None
