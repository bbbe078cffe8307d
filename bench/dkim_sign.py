"""Measure DKIM signatures per second on one core.

Run with ``.venv/bin/python bench/dkim_sign.py [--seconds N]``. Signs a
typical invitation (a few kilobytes, with List-Unsubscribe headers) over
and over, for RSA 2048 and Ed25519, three ways:

- dkimpy alone (``dkim.sign``): its RSA arithmetic is pure Python; its
  Ed25519 goes through PyNaCl;
- postroom's signer, hashing the body for every copy;
- postroom's signer as the relay uses it, the body hashed once per message.

Each copy is checked with dkimpy once before timing starts.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable
from email.message import EmailMessage

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from postroom.clock import SystemClock
from postroom.relay.dkim import DkimSigner
from postroom.relay.dkim_keys import Algorithm, SigningKey, generate, txt_record

SIGNED = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
    b"content-type", b"content-transfer-encoding", b"list-unsubscribe",
    b"list-unsubscribe-post", b"from",
]  # fmt: skip


def invitation() -> bytes:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = "Ada Lovelace <ada@example.net>"
    message["Subject"] = "Your invitation to the spring survey"
    message["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
    message["Message-ID"] = "<inv-1@example.org>"
    message["List-Unsubscribe"] = (
        "<mailto:unsubscribe+aedu24cbmhzlsuq7bznq@bounces.example.org>, "
        "<https://mail.example.org/unsubscribe/aedu24cbmhzlsuq7bznq>"
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("Dear Ada,\n\nPlease take our survey.\n" * 60)
    return message.as_bytes().replace(b"\n", b"\r\n")


def dkimpy_key(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """The private key in the form dkimpy's own signer reads."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw)


def rate(sign: Callable[[], bytes], seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        sign()
        count += 1
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    raw = invitation()
    print(f"message: {len(raw)} bytes; {seconds:g} s per measurement, one core")

    algorithms: list[Algorithm] = ["rsa-sha256", "ed25519-sha256"]
    for algorithm in algorithms:
        key = generate(algorithm)
        record = "".join(txt_record(key).split('"')[1::2]).encode()

        def lookup(name: bytes, timeout: float = 5, record: bytes = record) -> bytes:
            return record

        signer = DkimSigner(
            [SigningKey("example.org", "s1", algorithm, key)], SystemClock()
        )
        pem = dkimpy_key(key)
        ways: dict[str, Callable[[], bytes]] = {
            "dkimpy alone": lambda pem=pem, algorithm=algorithm: (
                dkim.sign(
                    raw,
                    b"s1",
                    b"example.org",
                    pem,
                    canonicalize=(b"relaxed", b"relaxed"),
                    signature_algorithm=algorithm.encode(),
                    include_headers=SIGNED,
                )
                + raw
            ),
            "postroom, body per copy": lambda signer=signer: signer.sign(raw),
            "postroom, body per message": lambda signer=signer: signer.sign(
                raw, body_key="q1"
            ),
        }
        for name, sign in ways.items():
            if not dkim.verify(sign(), dnsfunc=lookup):
                raise SystemExit(f"{algorithm} {name}: the signature does not verify")
            print(f"{algorithm:15} {name:28} {rate(sign, seconds):9.0f} signatures/s")


if __name__ == "__main__":
    main()
