"""Which failures keep an address off future mailings, and on which list.

The policy is a table from failure category to yes or no (config key
``suppression.policy``). By default the failures that are the address's
own fault (unknown user, unknown domain, mailbox gone) and complaints
suppress; blocks caused by the sender's reputation, policy rejections,
full mailboxes and expiry do not, since mailing the address again later
may well succeed.

The list is the campaign's, or with ``suppression.scope: global`` the one
list that covers every campaign. An unsubscribe is always for the
campaign the recipient was mailed for: that is what the person asked.
"""

from __future__ import annotations

from datetime import datetime

from postroom.config.schema import SuppressionConfig
from postroom.queue.models import BounceRecord
from postroom.queue.store import GLOBAL_SCOPE, Store


class SuppressionPolicy:
    """The configured table, and where its suppressions go."""

    def __init__(self, config: SuppressionConfig) -> None:
        self._policy = dict(config.policy)
        self._global = config.scope == "global"

    def suppresses(self, bounce: BounceRecord) -> bool:
        """Whether ``bounce`` puts its address on a list.

        Only a permanent failure counts (RFC 3464 section 2.3.3,
        ``Action: failed``); a delay never does.
        """
        return bounce.action == "failed" and self.covers(bounce.category)

    def covers(self, category: str) -> bool:
        """Whether a failure of ``category`` suppresses, per the table."""
        return self._policy.get(category, False)

    def scope(self, campaign: str | None) -> str:
        """The list a suppression for ``campaign`` goes on."""
        if self._global or not campaign:
            return GLOBAL_SCOPE
        return campaign


async def apply_policy(
    store: Store, policy: SuppressionPolicy, bounce: BounceRecord, now: datetime
) -> str | None:
    """Suppress the address of ``bounce`` when the policy says so.

    Returns the scope it was put on (also when it was there already), or
    None when the policy does not suppress this failure.
    """
    if not policy.suppresses(bounce):
        return None
    scope = policy.scope(bounce.campaign)
    await store.suppress(scope, bounce.address, bounce.category, now)
    return scope
