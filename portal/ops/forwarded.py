"""The client's address behind a proxy, for the audit trail and the rate limiter.

gunicorn's ``forwarded_allow_ips`` decides whose ``X-Forwarded-Proto`` it believes, but it leaves
``REMOTE_ADDR`` as the proxy's address. This middleware takes the client's address from
``X-Forwarded-For``, believing it only from the same trusted proxies (``FORWARDED_ALLOW_IPS``, the
variable gunicorn reads): walking the list from the right, the first address that is not a trusted
proxy is the client. A client that sends its own ``X-Forwarded-For`` only adds entries to the left of
the one nginx appends, so it cannot choose the address that is recorded.

It also notes when the request arrived, for the latency metrics (portal/ops/metrics.py).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable

START_KEY = "portal.request_started"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(setting: str | Iterable[str] | None) -> list[Network] | None:
    """ "127.0.0.1,10.0.0.0/8" -> networks; "*" -> None (every peer is trusted)."""
    items = setting.split(",") if isinstance(setting, str) else list(setting or [])
    items = [item.strip() for item in items if item and item.strip()]
    if "*" in items:
        return None
    return [ipaddress.ip_network(item, strict=False) for item in items]


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.5:52100
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted(address: str | None, networks: list[Network] | None) -> bool:
    if networks is None:
        return True
    parsed = _address(address or "")
    return parsed is not None and any(parsed in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, networks: list[Network] | None) -> str:
    """The client's address: the peer's own unless the peer is a trusted proxy that says otherwise."""
    if not forwarded_for or not is_trusted(peer, networks):
        return peer
    candidate = peer
    for item in reversed(forwarded_for.split(",")):
        parsed = _address(item)
        if parsed is None:  # garbage: stop at the last hop we could read
            break
        candidate = str(parsed)
        if not is_trusted(candidate, networks):
            break
    return candidate


class ClientAddress:
    """WSGI middleware: REMOTE_ADDR becomes the client's address (see the module docstring)."""

    def __init__(self, app: Callable, trusted: str | Iterable[str] | None) -> None:
        self.app = app
        self.networks = parse_networks(trusted)

    def __call__(self, environ: dict, start_response: Callable):
        environ[START_KEY] = time.perf_counter()
        peer = environ.get("REMOTE_ADDR", "")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            client = client_address(peer, forwarded, self.networks)
            if client != peer:
                environ["portal.proxy_addr"] = peer
                environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
