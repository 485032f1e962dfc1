"""Where a push may go: a consumer names the sink, so the gateway must not become its way into
the gateway's own network (server-side request forgery).

A sink's host is resolved and every address it resolves to is checked:

- never one of the gateway's own services (its OPA, its database, itself), whatever else is
  allowed: a push there could rewrite OPA's data or reach the gateway's API;
- never a loopback, private, link-local, shared, reserved, multicast or unspecified address
  unless an operator listed its network in `sink_allowed_networks`
  (`DSGW_SINK_ALLOWED_NETWORKS`, comma-separated CIDRs; the test suite and the local demo allow
  loopback).

The check runs when the transfer starts and again just before the push connects, so a name
that resolves elsewhere meanwhile is caught at the second look.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from gateway.dataplane.errors import address_invalid

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """Return the networks of a comma-separated CIDR list (or an iterable of CIDRs)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise address_invalid("the sink's URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise address_invalid("the sink's URL has an invalid port") from None
    if parts.scheme.startswith("postgres"):
        return parts.hostname, port or 5432
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> set[Address]:
    """Return every address `host` resolves to (422 when it resolves to none)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise address_invalid(f"the sink's host {host!r} does not resolve") from None
    found = set()
    for info in infos:
        text = info[4][0].split("%")[0]  # an IPv6 zone index is not part of the address
        found.add(ipaddress.ip_address(text))
    return found


def _internal(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def own_services(urls: Iterable[str | None]) -> set[tuple[Address, int]]:
    """Return the (address, port) pairs of the gateway's own services named by `urls`."""
    out: set[tuple[Address, int]] = set()
    for url in urls:
        if not url or "://" not in url:
            continue
        try:
            host, port = _endpoint(url)
            out |= {(ip, port) for ip in resolve(host, port)}
        except Exception:  # noqa: BLE001 - a service that does not resolve cannot be reached
            continue
    return out


def check_sink(url: str, *, allowed: tuple[Network, ...], own: set[tuple[Address, int]]) -> None:
    """Raise the 422 problem unless a push may connect to `url` (see the module's rules)."""
    host, port = _endpoint(url)
    for ip in resolve(host, port):
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        if (plain, port) in own or (ip, port) in own:
            raise address_invalid(
                f"the sink {host}:{port} is one of the gateway's own services: refused"
            )
        if _internal(plain) and not any(
            plain.version == network.version and plain in network for network in allowed
        ):
            raise address_invalid(
                f"the sink {host} resolves to {plain}, an internal address the gateway does not "
                "push to (an operator may allow its network: DSGW_SINK_ALLOWED_NETWORKS)"
            )
