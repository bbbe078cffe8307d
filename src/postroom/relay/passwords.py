"""Password hashes for submission users, kept in the config file.

A hash reads ``scrypt$<n>$<r>$<p>$<salt>$<key>`` with salt and key in
base64, so the cost travels with the hash and can be raised later without
invalidating the passwords already written down.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# scrypt cost: 2**14 iterations of 8-block mixing, about 16 MiB and some tens
# of milliseconds per check; the usual interactive-login setting.
_N = 2**14
_R = 8
_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32

# Bounds for parameters read back from a hash, so a hand-edited config cannot
# make one login attempt take gigabytes or minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 256 * 1024 * 1024


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` for the config file."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, _N, _R, _P, _KEY_BYTES)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(key)))


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed``.

    The comparison takes the same time wherever the keys differ. A malformed
    hash, or one with an unreasonable cost, never matches and never raises.
    """
    parsed = _parse(hashed)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    try:
        key = _derive(password, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(key, expected)


def _derive(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogateescape"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_MAX_MEMORY,
        dklen=size,
    )


def _parse(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = hashed.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    _, n_text, r_text, p_text, salt_text, key_text = parts
    if not (n_text.isdigit() and r_text.isdigit() and p_text.isdigit()):
        return None
    n, r, p = int(n_text), int(r_text), int(p_text)
    if not (1 < n <= _MAX_N and n & (n - 1) == 0):
        return None
    if not (0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    try:
        salt = base64.b64decode(salt_text, validate=True)
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or not 16 <= len(key) <= 64:
        return None
    return n, r, p, salt, key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
