"""Real scaffolds deploy from a plain git URL with no build flags, on the sandbox: their
real packages from the npm registry, their real builds, served over HTTPS."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from core.sandbox import githost
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import https_get, show, toast
from .helpers.scaffolds import SCAFFOLDS, push_change, scaffold_repo
from .sandbox_helpers import planless_repo

Clients = Callable[[str], Any]


def scaffold_url(session_sandbox: Any, name: str) -> tuple[str, Any]:
    bare = session_sandbox.layout.bare_repo(f"scaffolds/{name}")
    return scaffold_repo(name, bare), bare


def deploy_plain(url: str, name: str, *extra: str) -> dict[str, Any]:
    result = toast(
        "--sandbox", "deploy", url, "--subdomain", name, "--wait", "--json", *extra, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


def build_step(name: str) -> dict[str, Any]:
    steps = show(name)["last_run"]["steps"]
    return dict(next(s for s in steps if s["name"] == "build"))


def test_toast_detect_reads_github_and_git_urls_and_names_sources(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    # owner/name: through the GitHub API stand-in's contents endpoint.
    result = toast("--sandbox", "detect", "toast-samples/node-server", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["build_type"] == {"value": "node", "source": "package.json: scripts.start"}
    assert plan["start_cmd"]["value"] == "npm run start"
    assert plan["complete"] is True
    # A plain git URL: a blob-less shallow fetch.
    url, _ = scaffold_url(session_sandbox, "next-app")
    human = toast("--sandbox", "detect", url)
    assert human.returncode == 0, human.stderr
    assert re.search(r"framework\s+nextjs\s+\(package.json: dependencies.next\)", human.stdout)
    assert re.search(r"install\s+npm ci\s+\(package-lock.json\)", human.stdout)
    assert re.search(r"start\s+npm run start\s+\(package.json: scripts.start\)", human.stdout)
    # A repo that names no framework: exit 1, the flags to pass.
    unknown = toast("--sandbox", "detect", planless_repo(session_sandbox.layout))
    assert unknown.returncode == 1
    assert "--build-type" in unknown.stderr and "--output-dir" in unknown.stderr


def test_undetectable_and_unsatisfiable_repos_fail_before_anything_is_launched(
    sandbox: SandboxInfo, session_sandbox: Any, aws: Clients
) -> None:
    planless = planless_repo(session_sandbox.layout)
    undetectable = toast("--sandbox", "deploy", planless, "--subdomain", "u")
    assert undetectable.returncode == 2
    assert f"cannot deploy {planless}: build_type:" in undetectable.stderr
    assert "--build-type" in undetectable.stderr
    url, bare = scaffold_url(session_sandbox, "vite-vue")
    package = json.loads((SCAFFOLDS / "vite-vue" / "package.json").read_text())
    package["engines"] = {"node": "<18"}
    push_change(bare, "package.json", json.dumps(package), "Require an old Node")
    old = toast("--sandbox", "deploy", url, "--subdomain", "old")
    assert old.returncode == 2
    assert "node_version: package.json: engines.node '<18' is satisfied by no Node line" in (
        old.stderr
    )
    ls = toast("ls", "--all", "--json")
    assert json.loads(ls.stdout) == []
    assert aws("ec2").describe_instances()["Reservations"] == []


def test_a_create_vite_react_app_deploys_with_no_flags_and_rebuilds_without_reinstalling(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    url, bare = scaffold_url(session_sandbox, "vite-react-ts")
    deployed = deploy_plain(url, "vite")
    assert deployed["state"] == "live"
    page = https_get(sandbox, "vite.sandbox.test")
    assert page.status_code == 200 and '<div id="root"></div>' in page.text
    asset = re.search(r'src="(/assets/index-[^"]+\.js)"', page.text)
    assert asset, page.text
    script = https_get(sandbox, "vite.sandbox.test", asset.group(1))
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "react.transitional.element" in script.text or "react.element" in script.text
    first = build_step("vite")
    assert "installed in" in first["detail"]
    build_log = (session_sandbox.layout.host_logs / "vite" / "build.log").read_text()
    assert "Unknown env config" not in build_log  # npm's warning for a config Toast set
    # The plan is kept with the deployment, each value with its source.
    assert show("vite")["plan"]["install_cmd"] == {"value": "npm ci", "source": "package-lock.json"}

    push_change(bare, "src/App.tsx", _app_with("Shipped by Toast"), "New headline")
    redeployed = toast("redeploy", "vite", "--wait", timeout=600)
    assert redeployed.returncode == 0, redeployed.stderr
    second = build_step("vite")
    assert "node_modules reused from" in second["detail"], second
    page = https_get(sandbox, "vite.sandbox.test")
    asset = re.search(r'src="(/assets/index-[^"]+\.js)"', page.text)
    assert asset
    assert "Shipped by Toast" in https_get(sandbox, "vite.sandbox.test", asset.group(1)).text

    # The plan does not change under a passing deployment: a new outDir breaks a plain
    # redeploy (the old release keeps serving); --redetect reads it and deploys.
    config = (SCAFFOLDS / "vite-react-ts" / "vite.config.ts").read_text()
    moved = config.replace(
        "plugins: [react()],", "plugins: [react()],\n  build: { outDir: 'site' },"
    )
    push_change(bare, "vite.config.ts", moved, "Build into site/")
    plain = toast("redeploy", "vite", "--wait", timeout=600)
    assert plain.returncode == 1
    assert "the build did not produce dist/index.html" in plain.stderr
    assert https_get(sandbox, "vite.sandbox.test").status_code == 200
    again = toast("redeploy", "vite", "--redetect", "--wait", timeout=600)
    assert again.returncode == 0, again.stderr
    assert "output_dir: 'dist' -> 'site'" in again.stdout
    assert show("vite")["plan"]["output_dir"] == {
        "value": "site",
        "source": "vite.config.ts: build.outDir",
    }
    assert https_get(sandbox, "vite.sandbox.test").status_code == 200

    # The build's own failure ends the run at its step with the compiler's words.
    broken = 'const count: number = "three";\n' + _app_with("{count}")
    push_change(bare, "src/App.tsx", broken, "A type error")
    failed = toast("redeploy", "vite", "--wait", timeout=600)
    assert failed.returncode == 1
    assert "redeploy of vite failed at step build" in failed.stderr
    assert "build failed: `npm run build` exited with" in failed.stderr
    assert "TS2322" in failed.stderr, failed.stderr
    assert https_get(sandbox, "vite.sandbox.test").status_code == 200


def _app_with(headline: str) -> str:
    return f"export default function App() {{\n  return <h1>{headline}</h1>\n}}\n"


def test_a_create_next_app_deploys_with_no_flags_and_renders_on_the_server(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    url, _ = scaffold_url(session_sandbox, "next-app")
    deployed = deploy_plain(url, "nextapp")
    assert deployed["state"] == "live"
    assert deployed["build_type"] == "node"
    page = https_get(sandbox, "nextapp.sandbox.test")
    assert page.status_code == 200
    # Server-rendered: the page's text is in the HTML itself, not filled in by JS.
    assert "To get started, edit the" in page.text
    assert page.headers.get("x-powered-by") == "Next.js"


def test_an_app_in_a_subdirectory_deploys_with_root(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    bare = session_sandbox.layout.bare_repo("scaffolds/mono")
    url = scaffold_repo("vite-vue", bare, subdir="apps/site")
    refused = toast("--sandbox", "detect", url)
    assert refused.returncode == 1 and "--root" in refused.stderr
    # As a pnpm workspace, the refusal names the app to deploy.
    push_change(bare, "package.json", '{"name": "mono", "private": true}', "workspace root")
    push_change(bare, "pnpm-workspace.yaml", "packages:\n  - 'apps/*'\n", "pnpm workspace")
    workspace = toast("--sandbox", "deploy", url, "--subdomain", "mono")
    assert workspace.returncode == 2
    assert "this is a pnpm workspace (pnpm-workspace.yaml), not an app" in workspace.stderr
    assert "deploy one of its apps with --root apps/site" in workspace.stderr
    deployed = deploy_plain(url, "mono", "--root", "apps/site")
    assert deployed["state"] == "live"
    page = https_get(sandbox, "mono.sandbox.test")
    assert page.status_code == 200 and '<div id="app"></div>' in page.text
    assert show("mono")["root_dir"] == "apps/site"


def test_pnpm_and_yarn_projects_build_through_corepack(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    for scaffold, name in (("pnpm-vite", "pnpmsite"), ("yarn-vite", "yarnsite")):
        url, _ = scaffold_url(session_sandbox, scaffold)
        deployed = deploy_plain(url, name)
        assert deployed["state"] == "live", deployed
        page = https_get(sandbox, f"{name}.sandbox.test")
        assert page.status_code == 200 and "/assets/index-" in page.text
        # The version the project pins in packageManager ran, through corepack's shim.
        pinned = json.loads((SCAFFOLDS / scaffold / "package.json").read_text())
        version = pinned["packageManager"].split("@")[1].split("+")[0]
        log = (session_sandbox.layout.host_logs / name / "build.log").read_text()
        assert version in log, log[-2000:]
        assert "Unknown env config" not in log  # no warning of Toast's own making


def test_sveltekit_apps_from_the_current_sv_create_deploy_by_url_alone(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    """sv 0.17 writes no svelte.config.js: the adapter is read from vite.config.ts."""
    for scaffold, name, build_type in (
        ("sveltekit-static", "kitstatic", "static"),
        ("sveltekit-node", "kitnode", "node"),
    ):
        url, _ = scaffold_url(session_sandbox, scaffold)
        deployed = deploy_plain(url, name)
        assert deployed["state"] == "live", deployed
        details = show(name)
        assert details["plan"]["build_type"] == {
            "value": build_type,
            "source": f"vite.config.ts: adapter-{build_type}",
        }
        page = https_get(sandbox, f"{name}.sandbox.test")
        assert page.status_code == 200 and "Welcome to SvelteKit" in page.text, page.text[:500]


def test_a_workspace_on_github_is_refused_naming_its_apps(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    """Through the contents API: the members are listed and read, the library left out."""
    githost.create_repo(
        session_sandbox.layout,
        "someone/workspace",
        {
            "package.json": json.dumps({"name": "ws", "private": True}),
            "pnpm-workspace.yaml": "packages:\n  - 'apps/*'\n  - 'packages/*'\n",
            "apps/web/package.json": json.dumps(
                {
                    "name": "web",
                    "devDependencies": {"vite": "^7"},
                    "scripts": {"build": "vite build"},
                }
            ),
            "packages/ui/package.json": json.dumps({"name": "ui", "main": "index.js"}),
        },
    )
    refused = toast("--sandbox", "detect", "someone/workspace")
    assert refused.returncode == 1
    assert "deploy one of its apps with --root apps/web," in refused.stderr
    assert "packages/ui" not in refused.stderr
