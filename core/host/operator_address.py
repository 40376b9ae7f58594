"""Who may reach SSH: the profile's operator_cidr, or else the operator's own public
address as a /32, asked of AWS's checkip service. Never the whole internet."""

from __future__ import annotations

import ipaddress

import httpx

from core.profile.config import Profile


class OperatorAddressError(Exception):
    """The operator's address cannot be found; says what to configure instead."""


async def operator_cidr(profile: Profile, *, timeout: float = 10) -> tuple[str, str]:
    """(cidr, where it came from)."""
    if profile.operator_cidr:
        return profile.operator_cidr, "operator_cidr in the profile"
    if profile.is_sandbox:
        return "127.0.0.1/32", "the sandbox (its instance host is this machine)"
    url = profile.checkip_url
    hint = f'set operator_cidr = "<your address>/32" in [profiles.{profile.name}]'
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise OperatorAddressError(
            f"could not ask {url} for your public address ({exc}); {hint}"
        ) from exc
    text = response.text.strip()
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise OperatorAddressError(
            f"{url} answered HTTP {response.status_code} {text[:60]!r}, not an IPv4 address; {hint}"
        ) from None
    if address.is_unspecified or address.is_multicast:
        raise OperatorAddressError(f"{url} says your address is {address}; {hint}")
    return f"{address}/32", f"your public address, from {url}"
