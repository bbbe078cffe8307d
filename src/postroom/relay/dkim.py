"""DKIM signatures (RFC 6376), the last change made to each outgoing copy.

How this works: dkimpy does the canonicalisation (relaxed/relaxed) and
feeds the header hash exactly as its own signer and every verifier do; the
signature itself is made with the ``cryptography`` package, whose RSA runs
in C, about fifteen times faster than dkimpy's pure-Python arithmetic.
The body hash depends only on the body, which is the same for every
recipient of a message, so it is computed once per message and kept for
the copies that follow.

Which key: the one whose domain is the From header's domain, so the
signature aligns for DMARC (RFC 7489 section 3.1.1). Failing that, the
key of the nearest parent domain: ``news.example.org`` is signed with
``example.org``'s key, which aligns under DMARC's relaxed alignment (the
default) but not under strict. Mail from any other domain goes unsigned.

The DKIM-Signature field is folded before its hash is taken; only the
``b=`` value, which the hash leaves out (RFC 6376 section 3.7), is split
into lines afterwards.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from email.utils import getaddresses

import dkim
import structlog
from dkim.canonicalization import CanonicalizationPolicy

from postroom.clock import Clock
from postroom.queue.models import Delivery
from postroom.relay.dkim_keys import SigningKey
from postroom.relay.message import HeaderField, split_header
from postroom.relay.stamp import Stamped

log = structlog.get_logger()

# The fields signed when present, each as often as it occurs (RFC 6376
# section 5.4.1 lists the ones that matter to readers). From is signed
# once more than it occurs, so a second From cannot be added (section 8.15).
SIGNED_FIELDS = (
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
OVERSIGNED_FIELDS = ("from",)

_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_FIELD_NAME = b"DKIM-Signature"
_B64_LINE = 72
_BODY_HASHES_KEPT = 1024


class DkimSigner:
    """A stamp step that signs each copy with the key aligned to its From."""

    def __init__(self, keys: Sequence[SigningKey], clock: Clock) -> None:
        self._keys = {key.domain: key for key in keys}
        self._clock = clock
        self._body_hashes: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._unsigned_domains: set[str] = set()

    def __call__(self, delivery: Delivery, message: Stamped) -> Stamped:
        signed = self.sign(message.raw, body_key=delivery.recipient.queue_id)
        return Stamped(message.mail_from, signed)

    def key_for(self, domain: str) -> SigningKey | None:
        """The key of ``domain`` itself, else of its nearest parent domain."""
        labels = domain.lower().rstrip(".").split(".")
        for start in range(len(labels) - 1):
            key = self._keys.get(".".join(labels[start:]))
            if key is not None:
                return key
        return None

    def sign(self, raw: bytes, *, body_key: str | None = None) -> bytes:
        """``raw`` with a DKIM-Signature field on top, or unchanged when no
        configured key aligns with its From domain.

        ``body_key`` names the message when several copies share one body,
        so that its hash is computed once.
        """
        fields, rest = split_header(raw)
        domain = _from_domain(fields)
        key = self.key_for(domain) if domain else None
        if key is None:
            self._note_unsigned(domain)
            return raw

        body = rest[2:] if rest.startswith(b"\r\n") else rest
        include = _signed_names(fields)
        # Only the signed fields are canonicalised; dkimpy picks among them
        # bottom-up just as it would among all fields.
        wanted = set(include)
        headers = [
            (name, f.raw[len(f.name) + 1 :])
            for f in fields
            if (name := f.name.encode("ascii")).lower() in wanted
        ]
        tags = [
            (b"v", b"1"),
            (b"a", key.algorithm.encode("ascii")),
            (b"c", b"relaxed/relaxed"),
            (b"d", key.domain.encode("ascii")),
            (b"s", key.selector.encode("ascii")),
            (b"t", str(int(self._clock.now().timestamp())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", self._body_hash(body, body_key)),
        ]
        # b= starts a line of its own, so the folding above it is final.
        value = dkim.fold(
            b"; ".join(b"=".join(tag) for tag in tags) + b";",
            namelen=len(_FIELD_NAME),
        )
        value = b" " + value + b"\r\n b="

        digest = hashlib.sha256()
        dkim.hash_headers(
            digest,
            _POLICY,
            _POLICY.canonicalize_headers(headers),
            include,
            (_FIELD_NAME, value),
            None,
        )
        signature = base64.b64encode(key.sign_digest(digest.digest()))
        folded = b"\r\n  ".join(
            signature[i : i + _B64_LINE] for i in range(0, len(signature), _B64_LINE)
        )
        field: bytes = _FIELD_NAME + b":" + value + folded + b"\r\n"
        return field + raw

    def _body_hash(self, body: bytes, body_key: str | None) -> bytes:
        if body_key is not None:
            kept = self._body_hashes.get(body_key)
            if kept is not None and kept[0] == len(body):
                self._body_hashes.move_to_end(body_key)
                return kept[1]
        canonical = relaxed_body(body)
        body_hash = base64.b64encode(hashlib.sha256(canonical).digest())
        if body_key is not None:
            self._body_hashes[body_key] = (len(body), body_hash)
            if len(self._body_hashes) > _BODY_HASHES_KEPT:
                self._body_hashes.popitem(last=False)
        return body_hash

    def _note_unsigned(self, domain: str | None) -> None:
        name = domain or "(no From domain)"
        if name not in self._unsigned_domains:
            self._unsigned_domains.add(name)
            log.warning("dkim.no_key", from_domain=name)


def relaxed_body(body: bytes) -> bytes:
    """``body`` (CRLF lines) in relaxed canonical form (RFC 6376 section 3.4.4)."""
    # Most bodies have only CRLF line ends, no tab, no run of spaces and no
    # space before a line end: then only the empty lines at the end go,
    # which a few searches and a strip establish much faster than
    # rewriting every line.
    crlf = body.count(b"\r\n")
    plain = (
        crlf
        and body.endswith(b"\r\n")
        and body.count(b"\r") == crlf
        and body.count(b"\n") == crlf
        and b"\t" not in body
        and b"  " not in body
        and b" \r\n" not in body
    )
    stripped = body.rstrip(b"\r\n") if plain else b""
    if not stripped or stripped.endswith(b" "):
        canonical: bytes = _POLICY.canonicalize_body(body)
        return canonical
    return stripped + b"\r\n"


def _from_domain(fields: Sequence[HeaderField]) -> str | None:
    """The one domain of the From header's addresses, if there is one."""
    values = [field.value for field in fields if field.name.lower() == "from"]
    domains = {
        address.rpartition("@")[2].lower().rstrip(".")
        for _, address in getaddresses(values)
        if "@" in address
    }
    if len(domains) != 1:
        return None
    return domains.pop()


def _signed_names(fields: Sequence[HeaderField]) -> list[bytes]:
    present = [field.name.lower() for field in fields]
    names: list[bytes] = []
    for name in SIGNED_FIELDS:
        count = present.count(name)
        if name in OVERSIGNED_FIELDS and count:
            count += 1
        names += [name.encode("ascii")] * count
    return names
