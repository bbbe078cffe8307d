"""VERP: a return path per recipient, so a bounce names who bounced.

With ``inbound.bounce_domain`` set, the copy for recipient row 42 leaves
with the envelope sender ``bounces+TOKEN@bounces.example.org``, where
TOKEN is a signed token naming row 42 (see `postroom.tokens`). A DSN is
sent to that address (RFC 5321 section 4.5.5, RFC 3464 section 2), so
the inbound listener knows the recipient without trusting anything the
report says; forged reports fail the signature check.

Some reports, RFC 5965 complaints in particular, come back to another
address and carry only the returned headers, with the recipient's
address redacted. So every copy also gets ``X-Postroom-Rcpt: TOKEN`` at
the top of its header, with the same token.

Decisions:

- A message submitted with the null sender ``<>`` is itself a bounce or
  an automatic reply and keeps ``<>`` (RFC 5321 section 4.5.5; RFC 3834
  section 3.3): a report about it must go nowhere.
- The key is the store's secret ``verp``, shared by every node; with
  ``inbound.secret`` in the config it is derived from that instead, so
  the operator can keep it across a new database.
- The token is lowercase base32 of at most 31 characters and the local
  part before it at most 32 (checked by the config), so the local part
  stays within RFC 5321's 64 octets and survives a server that lowercases
  the return path.
"""

from __future__ import annotations

import hashlib
import hmac

from postroom.config import Config
from postroom.queue.models import Delivery
from postroom.queue.store import Store
from postroom.relay.stamp import Stamped
from postroom.tokens import TokenSigner

RCPT_HEADER = "X-Postroom-Rcpt"
BOUNCE_PURPOSE = "bounce"


async def bounce_signer(config: Config, store: Store) -> TokenSigner:
    """The signer of VERP tokens and of the ``X-Postroom-Rcpt`` header."""
    return TokenSigner(await _key(config, store, "verp"), BOUNCE_PURPOSE)


async def _key(config: Config, store: Store, name: str) -> bytes:
    secret = config.inbound.secret
    if secret is None:
        return await store.secret(name)
    # One configured secret serves several purposes; each gets its own key.
    return hmac.new(secret.encode(), name.encode(), hashlib.sha256).digest()


def verp_address(local: str, token: str, domain: str) -> str:
    """``local+token@domain``."""
    return f"{local}+{token}@{domain}"


class VerpStep:
    """The stamping step that sets the VERP return path and the token header."""

    def __init__(self, signer: TokenSigner, local: str, domain: str) -> None:
        self._signer = signer
        self._local = local
        self._domain = domain

    def __call__(self, delivery: Delivery, message: Stamped) -> Stamped:
        token = self._signer.mint(delivery.recipient.id)
        raw = with_header(message.raw, f"{RCPT_HEADER}: {token}")
        if not message.mail_from:
            return Stamped(message.mail_from, raw)
        return Stamped(verp_address(self._local, token, self._domain), raw)


def with_header(raw: bytes, line: str) -> bytes:
    """``raw`` with ``line`` as the last field of its header section.

    Last rather than first: the top of the header belongs to the trace
    fields (RFC 5321 section 4.4), which later relays add above ours.
    """
    field = line.encode("ascii") + b"\r\n"
    if raw.startswith(b"\r\n"):
        return field + raw
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        # A message that is all header: the field goes at its end.
        return raw + (b"" if raw.endswith(b"\r\n") or not raw else b"\r\n") + field
    return raw[: end + 2] + field + raw[end + 2 :]
