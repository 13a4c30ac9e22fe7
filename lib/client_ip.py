"""The client's address of a request, under two trust rules.

- :func:`client_ip` (public tracking: rate limits, visitor hashes) believes
  ``X-Forwarded-For`` only from a peer in ``TRACKING_TRUSTED_PROXIES``;
- :func:`audit_ip` (the operators' audit trail) believes the last hop only
  behind our TLS proxy (``BEHIND_TLS_PROXY``).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _parse_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address. ``X-Forwarded-For`` is read only when the peer
    (REMOTE_ADDR) is one of ``TRACKING_TRUSTED_PROXIES``; then the right-most
    address that is not a trusted proxy is the client. Anyone else could write
    any address there, so without a trusted peer the header is ignored and a
    forged one lands in the peer's own rate-limit bucket."""
    remote = _parse_ip(str(request.META.get("REMOTE_ADDR") or ""))
    if remote is None:
        return "unknown"
    networks = _networks(tuple(settings.TRACKING_TRUSTED_PROXIES))
    if not networks or not _trusted(remote, networks):
        if not networks and remote.is_loopback and not _warned and "HTTP_X_FORWARDED_FOR" in request.META:
            _warn_untrusted_proxy(remote)
        return str(remote)
    client = remote
    for hop in reversed(str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")):
        address = _parse_ip(hop)
        if address is None:
            break  # garbage from a hop we cannot vouch for: keep the last address a proxy gave
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


_warned: list[bool] = []


def _warn_untrusted_proxy(remote: IPAddress) -> None:
    # Behind a proxy on this host with the setting empty, every visitor is the
    # proxy: all of them share one rate-limit bucket and one visitor hash.
    _warned.append(True)
    log.warning(
        "tracking: X-Forwarded-For from %s is ignored because TRACKING_TRUSTED_PROXIES is empty; every "
        "client behind that proxy shares one rate limit. Set TRACKING_TRUSTED_PROXIES=%s if it is your proxy.",
        remote,
        remote,
    )


def audit_ip(request: HttpRequest) -> str | None:
    """The address the audit log records. X-Forwarded-For is only believed
    behind our TLS proxy (BEHIND_TLS_PROXY): anyone else could forge it. nginx
    appends the peer it saw, so the last entry is the one our proxy vouches for."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops and _is_ip(hops[-1]):
            return hops[-1]
    remote = str(request.META.get("REMOTE_ADDR") or "")
    return remote if _is_ip(remote) else None


def _is_ip(text: str) -> bool:
    # The column is PostgreSQL's inet: a malformed value would fail the insert.
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
