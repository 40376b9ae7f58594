"""`toast activity`: the audit trail, and what one run asked of AWS and ran on the host."""

from __future__ import annotations

import time

import click

from cli.common import with_queries
from cli.output import emit_json
from core.views.read_models import activity as read_activity
from core.views.read_models import connected_now, run_calls


@click.command()
@click.option("--run", "run_id", type=int, metavar="ID", help="The calls and commands of one run.")
@click.option("--limit", default=50, show_default=True, help="How many audit entries.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def activity(run_id: int | None, limit: int, as_json: bool) -> None:
    """Who did what and when; with --run, every AWS call and host command of that run, in
    order (repeats of a polling call folded into one line)."""
    if run_id is not None:
        calls = with_queries(lambda q: run_calls(q, run_id))
        if as_json:
            emit_json(calls)
            return
        if not calls:
            click.echo(f"run {run_id} recorded no AWS calls or host commands")
        for c in calls:
            times = f"  (x{c['times']})" if c["times"] > 1 else ""
            click.echo(f"{_when(c['at'])}  [{c['step'] or '-'}] {c['what']}{times}")
        return
    rows = with_queries(lambda q: read_activity(q, limit=limit))
    if as_json:
        emit_json(rows)
        return
    here = with_queries(connected_now)
    if here:
        people = ", ".join(
            f"{p['name']} ({p['role']}, since {_when(p['since'])[11:]})" for p in here
        )
        click.echo(f"Connected now over ssh: {people}")
    if not rows:
        click.echo("Nothing has happened yet.")
    for r in rows:
        run = f"  run {r['run_id']}" if r["run_id"] else ""
        why = f"  ({r['detail']})" if r["via"] in ("webhook", "ssh") and r.get("detail") else ""
        click.echo(f"{_when(r['at'])}  {r['actor']:<20} {r['action']:<20} {r['target']}{run}{why}")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
