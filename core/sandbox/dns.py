"""A DNS server answering from the sandbox's Route53 zone, as the internet would see it.

Every query reads the zone afresh (no cache), so a record exists for ACME exactly
when Toast has created it. A record pointing at a sandbox instance's public IP is
answered with 127.0.0.1, where that instance's web server really listens; any other
address is withheld, so traffic never leaves loopback and a wrong record fails
validation as it would on AWS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
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


def route53_lookup(route53: Any, zone_name: str) -> Lookup:
    """A lookup over one hosted zone through the Route53 API: the zone's id (looked up again
    when the zone is recreated), then the records from the name on, in one small read (an
    ACME server asks for A, AAAA and CAA of many names at once; reading the whole zone for
    each made its queries time out with twenty deployments)."""
    zone_suffix = zone_name.rstrip(".").lower()
    zone_ids: list[str] = []

    def zone_id(fresh: bool) -> str | None:
        if fresh or not zone_ids:
            zones = route53.list_hosted_zones_by_name(DNSName=zone_suffix + ".", MaxItems="1")
            matching = [z for z in zones["HostedZones"] if z["Name"].rstrip(".") == zone_suffix]
            zone_ids[:] = [matching[0]["Id"]] if matching else []
        return zone_ids[0] if zone_ids else None

    def records(name: str) -> list[Any] | None:
        for fresh in (False, True):
            zone = zone_id(fresh)
            if zone is None:
                return None
            try:
                page = route53.list_resource_record_sets(
                    HostedZoneId=zone, StartRecordName=name + ".", MaxItems="10"
                )
            except route53.exceptions.NoSuchHostedZone:
                continue  # the zone was recreated (a sandbox reset): look its id up again
            return list(page["ResourceRecordSets"])
        return None

    def lookup(name: str) -> list[str] | None:
        if name != zone_suffix and not name.endswith("." + zone_suffix):
            return None
        found = False
        values: list[str] = []
        for record in records(name) or []:
            if record["Name"].rstrip(".").lower() != name:
                continue
            found = True
            if record["Type"] == "A":
                values.extend(r["Value"] for r in record.get("ResourceRecords", []))
        return values if found else None

    return lookup


def ec2_public_ips(ec2: Any) -> Callable[[], set[str]]:
    def ips() -> set[str]:
        found = set()
        paginator = ec2.get_paginator("describe_instances")
        filters = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        for page in paginator.paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    if instance.get("PublicIpAddress"):
                        found.add(instance["PublicIpAddress"])
        return found

    return ips


def start_dns(port: int, resolver: ZoneResolver) -> list[DNSServer]:
    servers = [
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=False),
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=True),
    ]
    for server in servers:
        server.start_thread()
    return servers
