"""List-Unsubscribe headers, stamped per recipient at delivery time.

Each copy carries (RFC 2369 section 3.2, RFC 8058 section 3.1)::

    List-Unsubscribe: <mailto:unsubscribe+TOKEN@DOMAIN>,
     <https://mail.example.org/unsubscribe/TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

TOKEN is the recipient row's id signed for the purpose ``unsubscribe``,
so a mail client's one-click POST, a mail to the mailto address and a
click on the confirmation page all name one recipient of one campaign and
nobody else. The mailto URI is there only when a domain that receives
such mail is configured.

The headers are folded here, before the DKIM step signs them; nothing
after that step may touch the header section again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog

from postroom.config import Config
from postroom.config.addresses import is_loopback_host
from postroom.queue.models import Delivery
from postroom.queue.store import Store
from postroom.relay.message import HeaderField, join_header, split_header
from postroom.relay.stamp import Stamped
from postroom.tokens import TokenSigner

log = structlog.get_logger()

LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"
TOKEN_PURPOSE = "unsubscribe"  # noqa: S105 -- a token purpose, not a secret

_ONE_CLICK_FIELD = f"{LIST_UNSUBSCRIBE_POST}: {ONE_CLICK}\r\n".encode("ascii")
_OUR_FIELDS = (LIST_UNSUBSCRIBE.lower(), LIST_UNSUBSCRIBE_POST.lower())
_LINE_LIMIT = 78  # RFC 5322 section 2.1.1: lines SHOULD stay within 78


async def unsubscribe_signer(store: Store) -> TokenSigner:
    """The signer of unsubscribe tokens, with the key every node shares."""
    return TokenSigner(await store.secret(TOKEN_PURPOSE), TOKEN_PURPOSE)


class UnsubscribeHeaders:
    """A stamp step adding one-click unsubscribe headers for each recipient.

    With ``replace`` false, a message whose application already set its own
    List-Unsubscribe goes out with the application's headers untouched and
    none of ours: its unsubscribe link is the one the sender means. With
    ``replace`` true, the application's List-Unsubscribe and
    List-Unsubscribe-Post are removed and ours added.
    """

    def __init__(
        self,
        signer: TokenSigner,
        base_url: str,
        *,
        mailto_domain: str | None = None,
        mailto_local: str = "unsubscribe",
        replace: bool = False,
    ) -> None:
        self._signer = signer
        self._base_url = base_url.rstrip("/")
        self._mailto_domain = mailto_domain
        self._mailto_local = mailto_local
        self._replace = replace

    def __call__(self, delivery: Delivery, message: Stamped) -> Stamped:
        fields, rest = split_header(message.raw)
        names = {field.name.lower() for field in fields}
        if LIST_UNSUBSCRIBE.lower() in names:
            if not self._replace:
                return message
            fields = [field for field in fields if not _ours(field)]

        token = self._signer.mint(delivery.recipient.id)
        fields += [
            HeaderField(LIST_UNSUBSCRIBE, self.list_unsubscribe(token)),
            HeaderField(LIST_UNSUBSCRIBE_POST, _ONE_CLICK_FIELD),
        ]
        return Stamped(message.mail_from, join_header(fields, rest))

    def url(self, token: str) -> str:
        """The https URI that unsubscribes the recipient ``token`` names."""
        return f"{self._base_url}/{token}"

    def list_unsubscribe(self, token: str) -> bytes:
        """The whole List-Unsubscribe field, folded, ending in CRLF."""
        uris = [f"<{self.url(token)}>"]
        if self._mailto_domain:
            mailto = f"{self._mailto_local}+{token}@{self._mailto_domain}"
            uris.insert(0, f"<mailto:{mailto}>")
        line = f"{LIST_UNSUBSCRIBE}: " + ", ".join(uris)
        if len(line) > _LINE_LIMIT:
            # Fold after the comma (RFC 2369 section 2 allows whitespace
            # between URIs), so each URI keeps a line of its own, and after
            # the colon too when the first URI would not fit beside it.
            first = f"{LIST_UNSUBSCRIBE}: {uris[0]},"
            start = " " if len(first) <= _LINE_LIMIT else "\r\n "
            line = f"{LIST_UNSUBSCRIBE}:{start}" + ",\r\n ".join(uris)
        return (line + "\r\n").encode("ascii")


def _ours(field: HeaderField) -> bool:
    return field.name.lower() in _OUR_FIELDS


async def build_unsubscribe_step(
    config: Config, store: Store
) -> UnsubscribeHeaders | None:
    """The step the ``unsubscribe`` section asks for; None while it is off."""
    settings = config.unsubscribe
    if settings.base_url is None:
        return None
    host = _host(settings.base_url)
    if settings.base_url.startswith("http:") and is_loopback_host(host):
        log.warning(
            "unsubscribe.insecure_url",
            base_url=settings.base_url,
            reason="plain http is accepted on loopback only, for testing",
        )
    return UnsubscribeHeaders(
        await unsubscribe_signer(store),
        settings.base_url,
        # The inbound listener takes mail for unsubscribe_local+TOKEN at the
        # bounce domain, so that is where the mailto link points by default.
        mailto_domain=settings.mailto_domain or config.inbound.bounce_domain,
        mailto_local=config.inbound.unsubscribe_local,
        replace=settings.existing_header == "replace",
    )


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""
