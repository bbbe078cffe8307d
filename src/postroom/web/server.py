"""The HTTP listener on ``web.listen``, run in the relay's event loop.

It listens on loopback by default: the site's TLS proxy terminates https
and forwards to it. It serves the one-click unsubscribe endpoint while
``unsubscribe.base_url`` is set, and the results pages, CSV downloads and
``/metrics`` while ``web.results`` is on; it is started when either is
(`wanted`). The unsubscribe endpoint is public; the rest asks for HTTP
Basic credentials once ``web.users`` names anybody.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from aiohttp import web

from postroom.clock import Clock
from postroom.config import Config
from postroom.config.addresses import split_hostport
from postroom.errors import ConfigError
from postroom.queue.store import Store
from postroom.relay.unsubscribe import unsubscribe_signer
from postroom.web.auth import BasicAuth
from postroom.web.metrics import MetricsPage
from postroom.web.results import ResultsPages
from postroom.web.unsubscribe import UnsubscribeHandler, suppression_is_global
from postroom.webhooks.events import EventOutbox

log = structlog.get_logger()

# Unsubscribe requests are a few bytes; refuse anything large early.
MAX_REQUEST_BYTES = 64 * 1024


def wanted(config: Config) -> bool:
    """Whether the configuration asks for anything the web listener serves."""
    return config.serves_web


class WebServer:
    """Serves ``BASE_PATH/{token}`` for one-click unsubscribe, the results
    pages and ``/metrics``, as configured."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The TCP port the listener is bound to (after `start`)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the web listener is not running")
        port: int = self._runner.addresses[0][1]
        return port

    async def start(self) -> None:
        """Bind ``web.listen`` and serve; `ConfigError` names the key when
        the address cannot be bound."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        base_url = self._config.unsubscribe.base_url
        if base_url is not None:
            handler = UnsubscribeHandler(
                self._store,
                await unsubscribe_signer(self._store),
                self._clock,
                global_scope=suppression_is_global(self._config),
                events=EventOutbox(self._config.webhooks, self._clock),
            )
            app.add_routes(handler.routes(urlsplit(base_url).path or "/"))
        if self._config.web.results:
            auth = BasicAuth(self._config.web.users)
            app.add_routes(ResultsPages(self._store, auth).routes())
            metrics = MetricsPage(self._config, self._store, self._clock, auth)
            app.add_routes(metrics.routes())

        # No access log: every URL carries a recipient's token, and the
        # handler logs each unsubscribe as an event of its own.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = split_hostport(self._config.web.listen)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            problem = f"web.listen: cannot listen on {host}:{port}: {exc}"
            raise ConfigError([problem]) from exc
        self._runner = runner
        log.info("web.listening", host=host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and finish open requests."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
