"""The gateway as a running HTTP server: its services (``gateway.bootstrap``) behind one listener."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.bootstrap import Services, build as build_services
from gateway.config import GatewayConfig
from gateway.entrypoints.http.app import create_app
from gateway.logs import get_logger

__all__ = ["Gateway", "build"]

log = get_logger("gateway")


class Gateway:
    """A gateway's services and the HTTP server in front of them, started and stopped together."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # The parts tests and tools look at, by name.
    @property
    def config(self) -> GatewayConfig:
        return self.services.config

    @property
    def clock(self):
        return self.services.clock

    @property
    def store(self):
        return self.services.store

    @property
    def metrics(self):
        return self.services.metrics

    @property
    def tls(self):
        return self.services.tls

    @property
    def relay(self):
        return self.services.relay

    @property
    def engine(self):
        return self.services.engine

    @property
    def audit(self):
        return self.services.audit

    @property
    def signer(self):
        return self.services.signer

    @property
    def workflows(self):
        return self.services.workflows

    async def start(self, *, host: str | None = None, port: int | None = None, reuse_port: bool = False) -> None:
        """Open the store, start delivering, then listen. ``port=0`` picks a free port; ``reuse_port``
        lets other processes listen on the same port (``SO_REUSEPORT``: ``gateway serve --workers``)."""
        await self.services.start()
        server = self.config.server
        # keepalive_timeout also closes a connection that has not sent a whole request by then
        # (slow headers); a slow body is cut off by the body deadline (gateway.web.intake).
        # auto_decompress off: gateway.web.body inflates what it supports and refuses the rest
        # with a 415 problem, where aiohttp would answer br or zstd with a plain-text 400.
        self._runner = web.AppRunner(create_app(self.services), access_log=None, handle_signals=False,
                                     keepalive_timeout=server.receive_timeout_seconds, auto_decompress=False)
        await self._runner.setup()
        tls = self.services.tls
        site = _Site(
            self._runner,
            host if host is not None else server.host,
            server.port if port is None else port,
            ssl_context=tls.context if tls is not None else None,
            backlog=1024,
            reuse_address=True,
            reuse_port=reuse_port or None,
            handshake_timeout=server.receive_timeout_seconds,
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("gateway listening", host=self._runner.addresses[0][0], port=self.port, store=_scheme(self.config))

    async def stop(self) -> None:
        """Stop listening first (nothing new is acknowledged), then finish deliveries, then close the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.services.stop()
        log.info("gateway stopped")

    @property
    def url(self) -> str:
        scheme = "https" if self.services.tls is not None else "http"
        return f"{scheme}://{self.config.server.host}:{self.port}"


class _Site(web.TCPSite):
    """aiohttp's TCP site, with the TLS handshake bounded like the rest of a request: a client
    that connects and never starts the handshake is dropped after ``handshake_timeout``, not
    asyncio's default 60 s."""

    def __init__(self, *args, handshake_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context is not None else None,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


def build(config: GatewayConfig, **options) -> Gateway:
    """A gateway ready to start: ``gateway.bootstrap.build``'s services (same options) and a server."""
    return Gateway(build_services(config, **options))


def _scheme(config: GatewayConfig) -> str:
    # Never log the whole URL: it may carry a password.
    return config.store.url.split(":", 1)[0]
