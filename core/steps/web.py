"""nginx on the host: write a site config and reload without dropping a request."""

from __future__ import annotations

import httpx

from core.commands import render
from core.commands.files import read_file
from core.commands.nginx import nginx_workers, reload_nginx
from core.host.ssh import Remote
from core.runs.context import RunContext
from core.runs.waiting import poll

#: Each probe of a site on a connection of its own: a kept-alive one would reach an nginx
#: worker still running the configuration from before a reload, and a CA connects afresh.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


async def write_site(ctx: RunContext, remote: Remote, text: str) -> bool:
    """Install the site config if it changed; returns whether nginx was reloaded."""
    app = ctx.app
    current = await remote.run(read_file(app.site_conf), what="read the site config")
    if "\n".join(current.output).strip() == text.strip():
        return False
    staged = f"{app.app_dir}/nginx-site.conf"
    await remote.write_file(staged, text.encode(), mode=0o644)
    await remote.run(
        render((*ctx.host.sudo, "install", "-m", "0644", staged, app.site_conf)),
        what="install the site config",
    )
    await reload(ctx, remote)
    return True


async def reload(ctx: RunContext, remote: Remote) -> None:
    """Reload nginx and wait until the workers that served the old config are gone: until
    then a new connection can still reach an old worker."""
    before = await remote.run(nginx_workers(ctx.host), what="list nginx workers")
    old = set(" ".join(before.output).split())
    await remote.run(reload_nginx(ctx.host), what="reload nginx")

    async def old_workers_gone() -> bool | None:
        now = await remote.run(nginx_workers(ctx.host), what="list nginx workers")
        return True if not (set(" ".join(now.output).split()) & old) else None

    await poll(
        old_workers_gone, what="nginx's old workers to finish", timeout=120, initial=0.05, maximum=1
    )
