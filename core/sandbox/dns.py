"""A DNS server answering from the sandbox's Route53 zone, as the internet would see it.

Every query reads the zone afresh (no cache), straight from moto's models in this
process, so a record exists for ACME exactly when Toast has created it. A record
pointing at a sandbox instance's public IP is answered with 127.0.0.1, where that
instance's web server really listens; any other address is withheld, so traffic never
leaves loopback and a wrong record fails validation as it would on AWS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSServer

#: name (lower case, no trailing dot) -> its A values, or None when the name does not exist
Lookup = Callable[[str], list[str] | None]


class ZoneResolver(BaseResolver):  # type: ignore[misc]  # dnslib is untyped
    def __init__(self, lookup: Lookup, local_ips: Callable[[], set[str]]) -> None:
        self.lookup = lookup
        self.local_ips = local_ips

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        try:
            values = self.lookup(qname)
        except Exception:  # the AWS side is down: SERVFAIL, as a broken resolver would
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if values is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype in (QTYPE.A, QTYPE.ANY):
            local = self.local_ips()
            for value in values:
                answer = _reachable(value, local)
                if answer:
                    reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(answer), ttl=0))
        return reply


def _reachable(value: str, instance_ips: set[str]) -> str | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if ip.is_loopback:
        return value
    if value in instance_ips:
        return "127.0.0.1"
    return None


def zone_lookup(zones: Callable[[], Iterable[Any]], zone_name: str) -> Lookup:
    """A lookup over one hosted zone held in moto's models (this daemon's own memory): an
    ACME server asks for A, AAAA and CAA of many names at once, and twenty deployments'
    validations asked over moto's HTTP API, behind the engines' calls, timed out."""
    zone_suffix = zone_name.rstrip(".").lower()

    def lookup(name: str) -> list[str] | None:
        if name != zone_suffix and not name.endswith("." + zone_suffix):
            return None
        found = False
        values: list[str] = []
        for zone in list(zones()):
            if zone.name.rstrip(".").lower() != zone_suffix:
                continue
            for record in list(zone.rrsets):
                if record.name.rstrip(".").lower() != name:
                    continue
                found = True
                if record.type == "A":
                    values.extend(record.records or [])
        return values if found else None

    return lookup


def instance_public_ips(instances: Callable[[], Iterable[Any]]) -> Callable[[], set[str]]:
    """The public IPs of pending and running instances in moto's models."""

    def ips() -> set[str]:
        return {
            i.public_ip
            for i in list(instances())
            if i.public_ip and i.state in ("pending", "running")
        }

    return ips


def start_dns(port: int, resolver: ZoneResolver) -> list[DNSServer]:
    servers = [
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=False),
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=True),
    ]
    for server in servers:
        server.start_thread()
    return servers
