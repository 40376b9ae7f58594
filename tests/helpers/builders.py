"""Records the tests build in a real state database: a deployment as the CLI would
create it, and one that is live with a release."""

from __future__ import annotations

from pathlib import Path

from storage import Queries, open_database
from storage.records import NewDeployment


def new_deployment(name: str = "blog", **overrides: object) -> NewDeployment:
    fields: dict[str, object] = dict(
        name=name,
        profile="sandbox",
        repo="toast-samples/static-site",
        branch="main",
        subdomain=name,
        fqdn=f"{name}.sandbox.test",
        build_type="static",
        node_version="22",
        install_cmd="npm ci",
        build_cmd="npm run build",
        output_dir="dist",
        instance_type="t3.micro",
    )
    fields.update(overrides)
    return NewDeployment(**fields)  # type: ignore[arg-type]  # the fields are NewDeployment's


async def live_deployment(db_path: Path, name: str = "blog") -> None:
    db = await open_database(db_path)
    try:
        q = Queries(db)
        d = await q.create_deployment(new_deployment(name), actor="test")
        release = await q.add_release(d.id, "a" * 40, "/r/a", run_id=None)
        await q.update_deployment(d.id, state="live", current_release_id=release.id)
    finally:
        await db.close()
