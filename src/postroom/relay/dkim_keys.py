"""DKIM private keys: made by ``postroom dkim keygen``, loaded at start-up.

Keys are PEM (PKCS #8) files readable only by the daemon's user. The
public half is published as a TXT record at ``SELECTOR._domainkey.DOMAIN``
(RFC 6376 section 3.6.2.1): ``p=`` is the DER SubjectPublicKeyInfo for
RSA, and the bare 32-byte public key for Ed25519 (RFC 8463 section 4).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from postroom.config.schema import DkimKeyConfig
from postroom.errors import ConfigError

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

RSA_BITS = 2048
MIN_RSA_BITS = 1024  # RFC 8301 section 3.2: verifiers refuse shorter keys
_TXT_CHUNK = 255  # one character-string of a TXT record (RFC 1035 3.3.14)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One configured key: whose mail it signs and how."""

    domain: str
    selector: str
    algorithm: Algorithm
    private: PrivateKey

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature over a SHA-256 digest of the signed header data.

        RSA signs it as PKCS #1 v1.5 (RFC 6376 section 3.3.1); Ed25519
        signs the digest itself as its message (RFC 8463 section 3).
        """
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(
                digest, padding.PKCS1v15(), Prehashed(hashes.SHA256())
            )
        return self.private.sign(digest)


def generate(algorithm: Algorithm) -> PrivateKey:
    """A new private key: RSA 2048 or Ed25519."""
    if algorithm == "ed25519-sha256":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def write_private_key(key: PrivateKey, path: Path) -> None:
    """Write ``key`` as PEM to a new file that only its owner can read.

    Refuses (`FileExistsError`) to overwrite a key that may be published.
    """
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created with mode 0600 so the key is never readable by others, not
    # even between creating the file and changing its mode.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


def txt_record(key: PrivateKey) -> str:
    """The TXT value that publishes ``key``'s public half, as zone-file text:
    quoted strings of at most 255 characters, which resolvers join."""
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        value = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        value = "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode("ascii")
    chunks = [value[i : i + _TXT_CHUNK] for i in range(0, len(value), _TXT_CHUNK)]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def record_name(selector: str, domain: str) -> str:
    """Where the public key is published (RFC 6376 section 3.6.2.1)."""
    return f"{selector}._domainkey.{domain}"


def load_keys(entries: Sequence[DkimKeyConfig]) -> list[SigningKey]:
    """Read every configured key; `ConfigError` names each one that is
    missing, unreadable, not a key of its configured algorithm, or a second
    key for one domain."""
    keys: list[SigningKey] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if any(key.domain == entry.domain for key in keys):
            problems.append(f"dkim.{index}.domain: {entry.domain} has a key already")
            continue
        try:
            keys.append(_load(entry))
        except ValueError as exc:
            problems.append(f"dkim.{index}.key: {entry.key}: {exc}")
    if problems:
        raise ConfigError(problems)
    return keys


def _load(entry: DkimKeyConfig) -> SigningKey:
    try:
        data = entry.key.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the key file: {exc.strerror}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not an unencrypted PEM private key") from exc

    if entry.algorithm == "rsa-sha256":
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("algorithm rsa-sha256 needs an RSA key")
        if private.key_size < MIN_RSA_BITS:
            raise ValueError(f"an RSA key needs at least {MIN_RSA_BITS} bits")
    elif not isinstance(private, ed25519.Ed25519PrivateKey):
        raise ValueError("algorithm ed25519-sha256 needs an Ed25519 key")
    return SigningKey(entry.domain, entry.selector, entry.algorithm, private)
