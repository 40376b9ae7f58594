"""A Let's Encrypt certificate through HTTP-01, issued as soon as DNS and port 80 allow."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from core.commands import render
from core.commands.certbot import cert_enddate, certbot_certonly, has_certificate
from core.commands.nginx import nginx_site
from core.context import RunContext, StepFailed
from core.steps.web import write_site


async def https(ctx: RunContext) -> dict[str, Any]:
    remote = await ctx.remote()
    fqdn = ctx.deployment.fqdn
    # Until a certificate exists, the site answers ACME challenges only.
    have_cert = await remote.run(
        render(has_certificate(ctx.host, fqdn)),
        what="look for a certificate",
        check=False,
    )
    if have_cert.status != 0:
        await write_site(
            ctx,
            remote,
            nginx_site(ctx.app, fqdn, https=False, static_root=None, upstream_port=None),
        )
    await wait_port_80(ctx)
    server = "https://127.0.0.1:9/dir" if ctx.settings.faults.active("certbot", "fail") else None
    lines: list[str] = []
    result = await remote.run(
        certbot_certonly(ctx.host, fqdn, server), what="certbot", check=False, on_line=lines.append
    )
    if result.status != 0:
        detail = next(
            (ln.strip() for ln in lines if "Detail:" in ln or "Error" in ln),
            lines[-1] if lines else "",
        )
        raise StepFailed(
            f"certbot could not get a certificate for {fqdn}: {detail}",
            hint="check that the DNS record points at the instance and port 80 is "
            "open to the internet",
        )
    end = await remote.run(render(cert_enddate(ctx.host, fqdn)), what="read certificate expiry")
    expires = parse_enddate(end.output[-1])
    await ctx.queries.update_deployment(ctx.deployment.id, cert_expires_at=expires.timestamp())
    return {
        "cert_expires_at": expires.timestamp(),
        "_detail": f"certificate valid until {expires:%Y-%m-%d %H:%M} UTC",
    }


async def wait_port_80(ctx: RunContext) -> None:
    """HTTP-01 needs port 80 to answer for the name; probe it as the CA will."""
    ip = ctx.outputs["address"]["public_ip"]
    host, port = ctx.host.http_address(ip)
    url = f"http://{host}:{port}/.well-known/acme-challenge/toast-probe"

    async def answers() -> bool | None:
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                await client.get(url, headers={"Host": ctx.deployment.fqdn})
        except httpx.HTTPError:
            return None
        return True

    await ctx.wait(
        answers,
        step="https",
        what=f"port 80 on {host} to answer",
        report="port 80 to answer",
        timeout=300,
        hint="port 80 must be open to the internet for HTTP-01",
    )


def parse_enddate(line: str) -> dt.datetime:
    # openssl prints: notAfter=Feb 19 23:59:59 2027 GMT
    value = line.split("=", 1)[-1].strip()
    parsed = dt.datetime.strptime(value, "%b %d %H:%M:%S %Y %Z")
    return parsed.replace(tzinfo=dt.UTC)
