"""Who is the client: the peer address, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; never trust it otherwise."""
    address = _parse(peer or "")
    if address is None:
        return peer or "unknown"
    if not forwarded_for or not _is_trusted(address, trusted):
        return str(address)
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _parse(hop)
        if hop_address is None:
            break
        address = hop_address
        if not _is_trusted(address, trusted):
            break
    return str(address)


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]
) -> bool:
    return any(address in network for network in trusted)
