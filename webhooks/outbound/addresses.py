"""Which addresses a delivery may reach: never a private, loopback,
link-local, multicast or otherwise non-public one (server-side request
forgery), checked when an endpoint is registered and again against the
address actually connected to, so a name that later resolves elsewhere (DNS
rebinding) gains nothing. OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS lets
loopback and private networks through, for development and tests only."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenURL(ValueError):
    """The URL may not be delivered to; the message says why."""


def refusal(address: str) -> str | None:
    """Why ``address`` may not be reached, or None when it may."""
    ip: IPAddress = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a multicast or unspecified address"
    if ip.is_global:
        return None
    if settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS and (ip.is_loopback or ip.is_private):
        return None
    kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private or reserved"
    return f"{ip} is a {kind} address"


def split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a deliverable URL; ForbiddenURL when it is not one."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unbalanced "[" of an IPv6 literal
        raise ForbiddenURL(f"the URL cannot be read: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ForbiddenURL("the URL must be http or https")
    if parts.scheme != "https" and settings.OUTBOUND_WEBHOOK_REQUIRE_HTTPS:
        raise ForbiddenURL("the URL must be https")
    if not host:
        raise ForbiddenURL("the URL has no host")
    if parts.username or parts.password:
        raise ForbiddenURL("the URL may not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ForbiddenURL("the URL's port is not a number between 0 and 65535") from None
    return parts.scheme, host, port


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to; ForbiddenURL when it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror, an IDNA label too long, a NUL
        raise ForbiddenURL(f"{host} does not resolve: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str) -> None:
    """At registration: the URL is well formed and every address of its host may be reached."""
    _, host, port = split(url)
    for address in resolve(host, port):
        reason = refusal(address)
        if reason:
            raise ForbiddenURL(f"{host} resolves to {reason}; deliveries may only go to public addresses")
