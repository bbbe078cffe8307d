"""Per-recipient changes made to a message at delivery time.

The stored message is the same for every recipient; what differs per
recipient is added just before the attempt, in a fixed order: the return
path and the headers that name the recipient first, a DKIM signature last
(so that it covers the headers added before it).

Each change is a `StampStep`; a `Stamper` applies them in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from postroom.clock import Clock, SystemClock
from postroom.config import Config
from postroom.queue.models import Delivery
from postroom.queue.store import Store


@dataclass(frozen=True, slots=True)
class Stamped:
    """What goes out for one recipient: the envelope sender and the bytes."""

    mail_from: str
    raw: bytes


class StampStep(Protocol):
    def __call__(self, delivery: Delivery, message: Stamped) -> Stamped:
        """Return ``message`` with this step's change made for ``delivery``."""
        ...


class Stamper:
    """Applies the configured steps, in order, to each outgoing copy."""

    def __init__(self, steps: Sequence[StampStep] = ()) -> None:
        self._steps = tuple(steps)

    def stamp(self, delivery: Delivery, raw: bytes) -> Stamped:
        """The copy of ``raw`` to send to ``delivery``'s recipient."""
        message = Stamped(delivery.mail_from, raw)
        for step in self._steps:
            message = step(delivery, message)
        return message


async def build_stamper(
    config: Config, store: Store, clock: Clock | None = None
) -> Stamper:
    """The steps the configuration asks for, with their keys from the store.

    `ConfigError` when a configured DKIM key cannot be used.
    """
    # Imported here: these modules build on `Stamped` from this one.
    from postroom.relay.dkim import DkimSigner
    from postroom.relay.dkim_keys import load_keys
    from postroom.relay.unsubscribe import build_unsubscribe_step

    steps: list[StampStep] = []
    inbound = config.inbound
    if inbound.bounce_domain is not None:
        # Imported here: the verp module builds on this one.
        from postroom.relay.verp import VerpStep, bounce_signer

        signer = await bounce_signer(config, store)
        steps.append(VerpStep(signer, inbound.bounce_local, inbound.bounce_domain))
    unsubscribe = await build_unsubscribe_step(config, store)
    if unsubscribe is not None:
        steps.append(unsubscribe)
    # DKIM last: it signs the headers every step before it added.
    if config.dkim:
        steps.append(DkimSigner(load_keys(config.dkim), clock or SystemClock()))
    return Stamper(steps)
