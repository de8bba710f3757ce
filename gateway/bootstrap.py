"""The one place where concrete parts are chosen and wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.delivery.engine import DeliveryEngine
from gateway.delivery.relay import Relay
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.security.audit import AuditLog
from gateway.security.audit_keys import AuditKeys
from gateway.security.disclosure import DisclosurePolicy
from gateway.soap.release_notices import RELEASE_NOTICE_SENDERS, ReleaseNoticeReceiver
from gateway.store import Store, create_store

log = get_logger("gateway")


@dataclass
class Gateway:
    """A running gateway: its store, delivery engine, relay and HTTP server."""

    config: GatewayConfig
    store: Store
    metrics: Metrics
    engine: DeliveryEngine
    relay: Relay
    policy: DisclosurePolicy
    audit: AuditLog
    clock: Callable[[], float] = time.time
    release_notice_receiver: ReleaseNoticeReceiver | None = None
    """Takes the release notices pushed to SOAP release-notices; None leaves that service closed."""
    release_notice_senders: tuple[str, ...] = RELEASE_NOTICE_SENDERS
    _runner: web.AppRunner | None = field(default=None, repr=False)
    port: int | None = None

    async def start(self, *, host: str | None = None, port: int | None = None) -> None:
        """Open the store, start delivering, then listen. ``port=0`` picks a free port."""
        from gateway.http.app import create_app

        await self.store.open()
        self.audit.start(self.config.audit.tree_head_interval_seconds)
        await self.engine.start()
        self._runner = web.AppRunner(create_app(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host if host is not None else self.config.server.host,
            self.config.server.port if port is None else port,
            backlog=1024,
            reuse_address=True,
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("gateway listening", host=self._runner.addresses[0][0], port=self.port, store=_scheme(self.config))

    async def stop(self) -> None:
        """Stop listening first (nothing new is acknowledged), then finish deliveries, then close the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.engine.stop(self.config.server.shutdown_grace_seconds)
        await self.audit.stop()
        await self.store.close()
        log.info("gateway stopped")

    @property
    def url(self) -> str:
        return f"http://{self.config.server.host}:{self.port}"


def build(
    config: GatewayConfig,
    *,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
    release_notice_receiver: ReleaseNoticeReceiver | None = None,
    release_notice_senders: tuple[str, ...] = RELEASE_NOTICE_SENDERS,
) -> Gateway:
    """Wire a gateway. ``release_notice_receiver`` (the release-case workflow) opens the SOAP
    release-notices service to ``release_notice_senders``."""
    store = store or create_store(config.store.url, base_dir=config.base_dir)
    metrics = Metrics()
    engine = DeliveryEngine(store, config.members, config.delivery, metrics, clock=clock)
    relay = Relay(config, store, metrics, clock)
    policy = DisclosurePolicy(config.policy)
    audit = AuditLog(
        store,
        AuditKeys.provision(config.audit, config.base_dir),
        gateway_member=config.server.member_id,
        clock=clock,
    )
    return Gateway(
        config=config, store=store, metrics=metrics, engine=engine, relay=relay, policy=policy, audit=audit,
        clock=clock,
        release_notice_receiver=release_notice_receiver,
        release_notice_senders=release_notice_senders,
    )


def _scheme(config: GatewayConfig) -> str:
    # Never log the whole URL: it may carry a password.
    return config.store.url.split(":", 1)[0]
