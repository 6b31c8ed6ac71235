"""Connection pools: one per SMTP server (`[smtp]` and each `[[smtp_servers]]`), each with that
server's connection count and rate limits; or one pool around a given transport."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.sending.ratelimit import RateLimiter
from newsletter.transport import make_transport
from newsletter.transport.base import Transport
from newsletter.transport.smtp import SmtpTransport


@dataclass
class Pool:
    """Connections to one SMTP server (or one other transport) with that server's limits."""

    name: str
    factory: Callable[[], Transport]
    connections: int
    limiter: RateLimiter | None = None
    rates: tuple[float, int, int] = (0.0, 0, 0)  # per second, hour, day


def make_pools(
    settings: Settings,
    transport: Transport | None,
    transport_factory: Callable[[], Transport] | None,
    connections: int | None,
    limiter: RateLimiter | None,
) -> list[Pool]:
    """One pool per SMTP server: `[smtp]` and each `[[smtp_servers]]` entry.

    Given a `transport`, one pool of one connection uses it; given a factory, or a transport
    other than SMTP, one pool makes its connections with it.
    """
    delivery = settings.delivery
    rates = (delivery.rate_per_second, delivery.rate_per_hour, delivery.rate_per_day)
    if transport is not None:
        return [Pool("transport", lambda: transport, 1, limiter, rates)]
    if transport_factory is not None or delivery.transport != "smtp":
        factory = transport_factory or (lambda: make_transport(settings))
        default = settings.smtp.connections if delivery.transport == "smtp" else 1
        return [Pool(delivery.transport, factory, connections or default, limiter, rates)]
    smtp = settings.smtp
    pools = [
        Pool(
            f"{smtp.host}:{smtp.port}",
            lambda: SmtpTransport.from_server(smtp),
            connections or smtp.connections,
            limiter,
            rates,
        )
    ]
    for server in settings.smtp_servers:
        pools.append(
            Pool(
                f"{server.host}:{server.port}",
                functools.partial(SmtpTransport.from_server, server),
                server.connections,
                None,
                (server.rate_per_second, server.rate_per_hour, server.rate_per_day),
            )
        )
    return pools
