"""Signed, case-free tokens that name one recipient row.

A token travels in places that mangle text: the local part of a VERP
return path (which remote servers may lowercase, and which RFC 5321
section 4.5.3.1.1 limits to 64 octets) and the path of an unsubscribe URL.
So it is lowercase base32 without padding: the recipient id as a compact
unsigned integer, then a truncated HMAC-SHA256 over the purpose and the
id. The purpose (``"bounce"``, ``"unsubscribe"``) keeps a token minted for
one use from being replayed for another.

With an 80-bit tag, forging a token for a chosen recipient takes about
2**80 guesses; the HMAC key lives in the store so every node agrees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from postroom.errors import PostroomError

TAG_BYTES = 10


class BadToken(PostroomError):
    """A token that is malformed, truncated, or not signed by our key."""


class TokenSigner:
    """Mints and checks the tokens of one purpose with one key."""

    def __init__(self, key: bytes, purpose: str) -> None:
        if len(key) < 16:
            raise ValueError("a token key needs at least 16 bytes")
        self._key = key
        self._purpose = purpose.encode()

    def mint(self, recipient_id: int) -> str:
        """The token naming ``recipient_id``."""
        if recipient_id < 0:
            raise ValueError("recipient ids are not negative")
        body = recipient_id.to_bytes(_width(recipient_id), "big")
        return _spell(bytes([len(body)]) + body + self._tag(body))

    def check(self, token: str) -> int:
        """The recipient id a genuine token names; `BadToken` otherwise.

        Only the one spelling `mint` writes is genuine: base32 leaves unused
        bits in its last character, and a token that differs there is
        refused like any other altered token.
        """
        text = token.strip().upper()
        try:
            raw = base64.b32decode(text + "=" * (-len(text) % 8))
        except (binascii.Error, ValueError):
            raise BadToken("not a token") from None
        if not raw or len(raw) != 1 + raw[0] + TAG_BYTES or raw[0] > 8:
            raise BadToken("not a token")
        if _spell(raw) != text.lower():
            raise BadToken("not a token")
        body, tag = raw[1 : 1 + raw[0]], raw[1 + raw[0] :]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise BadToken("the token's signature does not match")
        return int.from_bytes(body, "big")

    def _tag(self, body: bytes) -> bytes:
        digest = hmac.new(self._key, self._purpose + b"\0" + body, hashlib.sha256)
        return digest.digest()[:TAG_BYTES]


def _spell(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _width(number: int) -> int:
    return max(1, (number.bit_length() + 7) // 8)
