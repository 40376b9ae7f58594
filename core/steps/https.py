"""A Let's Encrypt certificate through HTTP-01, issued as soon as DNS and port 80 allow."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx

from core.commands import render
from core.commands.certbot import (
    cert_enddate,
    certbot_certonly,
    certbot_renew_dry_run,
    has_certificate,
    renewal_timer_enabled,
)
from core.commands.nginx import nginx_site
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.runs.outputs import StepOutput
from core.steps.outputs import AddressOutput, HttpsOutput
from core.steps.web import FRESH_CONNECTIONS, write_site


async def https(ctx: RunContext) -> HttpsOutput:
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
    ca = ctx.host.acme_server or "letsencrypt-production"
    if have_cert.status != 0:
        await check_duplicate_limit(ctx, fqdn, ca)
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
    if have_cert.status != 0:
        await ctx.queries.add_certificate_request(
            fqdn, ca, deployment_id=ctx.deployment.id, run_id=ctx.run.id
        )
    end = await remote.run(render(cert_enddate(ctx.host, fqdn)), what="read certificate expiry")
    expires = parse_enddate(end.output[-1])
    await ctx.queries.update_deployment(ctx.deployment.id, cert_expires_at=expires.timestamp())
    return HttpsOutput(
        cert_expires_at=expires.timestamp(),
        detail=f"certificate valid until {expires:%Y-%m-%d %H:%M} UTC",
    )


async def renewal(ctx: RunContext) -> StepOutput:
    """The certificate will renew: the host's renewal timer is enabled, and a renewal
    rehearsal (`certbot renew --dry-run`, through sudo) passes against the same CA."""
    remote = await ctx.remote()
    fqdn = ctx.deployment.fqdn
    timer = renewal_timer_enabled(ctx.host)
    if timer is not None:
        enabled = await remote.run(render(timer), what="check the renewal timer", check=False)
        if enabled.status != 0:
            raise StepFailed(
                f"{ctx.host.renewal_timer} is not enabled on the instance, so {fqdn}'s "
                "certificate would expire in 90 days",
                hint=f"sudo systemctl enable --now {ctx.host.renewal_timer}",
            )
    lines: list[str] = []
    result = await remote.run(
        certbot_renew_dry_run(ctx.host, fqdn),
        what="rehearse renewal",
        check=False,
        on_line=lines.append,
    )
    if result.status != 0:
        detail = next((ln.strip() for ln in lines if "Detail:" in ln or "rror" in ln), "")
        raise StepFailed(
            f"a renewal rehearsal for {fqdn} failed: {detail or (lines[-1] if lines else '')}",
            hint="the certificate works now but would not renew; check port 80 and DNS",
        )
    return StepOutput(
        detail="renewal rehearsed" + (f"; {ctx.host.renewal_timer} on" if timer else "")
    )


#: Let's Encrypt: at most 5 certificates for the same exact set of names per 7 days.
DUPLICATE_LIMIT = 5
DUPLICATE_WINDOW = 7 * 86400


def next_allowed(times: list[float], now: float) -> float | None:
    """When another certificate for the name may be requested (None: now)."""
    recent = sorted(t for t in times if t > now - DUPLICATE_WINDOW)
    if len(recent) < DUPLICATE_LIMIT:
        return None
    return recent[-DUPLICATE_LIMIT] + DUPLICATE_WINDOW


async def check_duplicate_limit(ctx: RunContext, fqdn: str, ca: str) -> None:
    """Stop before a request Let's Encrypt would refuse, with the date it will not."""
    if ctx.target.profile.acme == "staging":
        return  # staging's limits are for rehearsals: far above what Toast asks
    now = time.time()
    times = await ctx.queries.certificate_requests_since(fqdn, ca, now - DUPLICATE_WINDOW)
    allowed = next_allowed(times, now)
    if allowed is None:
        return
    since = dt.datetime.fromtimestamp(min(times), dt.UTC)
    retry = dt.datetime.fromtimestamp(allowed, dt.UTC)
    raise StepFailed(
        f"Let's Encrypt issues at most {DUPLICATE_LIMIT} certificates for exactly {fqdn} per 7 "
        f"days, and Toast has asked for {len(times)} since {since:%Y-%m-%d %H:%M} UTC; another "
        f"request would be refused until {retry:%Y-%m-%d %H:%M} UTC",
        hint=f"retry after {retry:%Y-%m-%d %H:%M} UTC, deploy under another subdomain, or set "
        f'acme = "staging" in [profiles.{ctx.target.profile.name}] for rehearsals',
    )


async def wait_port_80(ctx: RunContext) -> None:
    """HTTP-01 needs port 80 to answer for the name; probe it as the CA will."""
    ip = ctx.output("address", AddressOutput).public_ip
    host, port = ctx.host.http_address(ip)
    url = f"http://{host}:{port}/.well-known/acme-challenge/toast-probe"

    # One client for the whole wait, made off the event loop: a client loads a CA bundle
    # (tens of ms of CPU), which every other run's steps would feel as lag.
    client = await asyncio.to_thread(httpx.AsyncClient, timeout=3, limits=FRESH_CONNECTIONS)

    async def answers() -> bool | None:
        try:
            await client.get(url, headers={"Host": ctx.deployment.fqdn})
        except httpx.HTTPError:
            return None
        return True

    async with client:
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
