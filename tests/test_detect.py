"""Build plans read from real scaffolds (committed, read back through git) and from the
layouts scaffolders this machine cannot run would make."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.repo.detect import BuildPlan, DetectionError, detect, resolve
from core.repo.files import read_repo_files

from .helpers.scaffolds import SCAFFOLDS, push_change, scaffold_repo
from .helpers.trees import files, pkg

NO_GITHUB = "http://127.0.0.1:9"

# scaffold -> expected values (and, where it matters, the file each came from)
EXPECTED = {
    "vite-react-ts": {
        "framework": ("vite-react", "package.json: devDependencies.vite"),
        "build_type": ("static", None),
        "install_cmd": ("npm ci", "package-lock.json"),
        "build_cmd": ("npm run build", "package.json: scripts.build"),
        "output_dir": ("dist", "Vite's default build.outDir"),
        "node_version": ("24", None),
    },
    "vite-vue": {"framework": ("vite-vue", None), "output_dir": ("dist", None)},
    "vite-svelte": {"framework": ("vite-svelte", None), "output_dir": ("dist", None)},
    "next-app": {
        "framework": ("nextjs", "package.json: dependencies.next"),
        "build_type": ("node", None),
        "install_cmd": ("npm ci", "package-lock.json"),
        "build_cmd": ("npm run build", "package.json: scripts.build"),
        "start_cmd": ("npm run start", "package.json: scripts.start"),
    },
    "next-export": {
        "framework": ("nextjs", None),
        "build_type": ("static", "next.config.ts: output: 'export'"),
        "output_dir": ("out", None),
    },
    "cra": {
        "framework": ("create-react-app", "package.json: dependencies.react-scripts"),
        "build_type": ("static", None),
        "output_dir": ("build", None),
        "install_cmd": ("npm ci", "package-lock.json"),
    },
    # sv 0.17: the adapter is configured in vite.config.ts; there is no svelte.config.js.
    "sveltekit-static": {
        "framework": ("sveltekit", "package.json: devDependencies.@sveltejs/kit"),
        "build_type": ("static", "vite.config.ts: adapter-static"),
        "output_dir": ("build", "vite.config.ts: adapter-static pages"),
        "install_cmd": ("npm ci", "package-lock.json"),
    },
    "sveltekit-node": {
        "framework": ("sveltekit", None),
        "build_type": ("node", "vite.config.ts: adapter-node"),
        "start_cmd": ("node build", "vite.config.ts: adapter-node"),
    },
    "pnpm-vite": {
        "framework": ("vite", None),
        "package_manager": ("pnpm", "pnpm-lock.yaml"),
        "install_cmd": ("pnpm install --frozen-lockfile", "pnpm-lock.yaml"),
        "build_cmd": ("pnpm run build", None),
    },
    "yarn-vite": {
        "framework": ("vite-react", None),
        "package_manager": ("yarn", "yarn.lock"),
        "install_cmd": ("yarn install --frozen-lockfile", "yarn.lock (Yarn 1)"),
        "build_cmd": ("yarn run build", None),
    },
}


def test_every_committed_scaffold_has_an_expectation() -> None:
    assert sorted(p.name for p in SCAFFOLDS.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_scaffolds_are_detected_from_git_with_their_sources(
    name: str, tmp_path: Path
) -> None:
    url = scaffold_repo(name, tmp_path / f"{name}.git")
    files = await read_repo_files(url, "main", "", github_api=NO_GITHUB, github_token=None)
    assert files.commit and len(files.commit) == 40
    plan = detect(files)
    values = plan.values()
    for field, (value, source) in EXPECTED[name].items():
        assert values[field].value == value, (field, values[field])
        if source is not None:
            assert values[field].source == source, (field, values[field])
    assert not plan.problems
    assert resolve(plan, {})  # complete: deployable with no flags
    # Every value says where it came from.
    assert all(v.source for v in values.values())


def plan_of(tree: dict[str, str | None], root: str = "") -> BuildPlan:
    return detect(files(tree), root)


def test_framework_layouts_that_scaffolders_here_cannot_make() -> None:
    astro = plan_of(
        {"package.json": pkg(dependencies={"astro": "^5"}, scripts={"build": "astro build"})}
    )
    assert (astro.build_type.value, astro.output_dir.value) == ("static", "dist")  # type: ignore[union-attr]
    astro_node = plan_of(
        {
            "package.json": pkg(
                dependencies={"astro": "^5", "@astrojs/node": "^9"},
                scripts={"build": "astro build"},
            )
        }
    )
    assert astro_node.start_cmd.value == "node ./dist/server/entry.mjs"  # type: ignore[union-attr]
    kit = {"package.json": pkg(devDependencies={"@sveltejs/kit": "^2"}, scripts={"build": "b"})}
    static_kit = plan_of(
        {**kit, "svelte.config.js": "import adapter from '@sveltejs/adapter-static';"}
    )
    assert (static_kit.build_type.value, static_kit.output_dir.value) == ("static", "build")  # type: ignore[union-attr]
    node_kit = plan_of({**kit, "svelte.config.js": "import a from '@sveltejs/adapter-node';"})
    assert node_kit.start_cmd.value == "node build"  # type: ignore[union-attr]
    auto_kit = plan_of({**kit, "svelte.config.js": "import a from '@sveltejs/adapter-auto';"})
    assert auto_kit.build_type is None
    assert "svelte.config.js configures neither" in auto_kit.problems["build_type"]
    # Named only files that exist: a vite.config.ts with adapter-auto, no svelte.config.
    auto_vite = plan_of({**kit, "vite.config.ts": "import a from '@sveltejs/adapter-auto';"})
    assert auto_vite.problems["build_type"].startswith("vite.config.ts configures neither")
    assert "svelte.config" not in auto_vite.problems["build_type"]
    # No config names an adapter, but exactly one is installed: that one.
    installed = plan_of(
        {
            "package.json": pkg(
                devDependencies={"@sveltejs/kit": "^2", "@sveltejs/adapter-node": "^5"},
                scripts={"build": "vite build"},
            ),
            "vite.config.ts": "export default defineConfig({ plugins: [sveltekit()] })",
        }
    )
    assert installed.start_cmd is not None and installed.start_cmd.value == "node build"
    assert installed.build_type is not None
    assert installed.build_type.source == "package.json: devDependencies.@sveltejs/adapter-node"
    nuxt = {"package.json": pkg(dependencies={"nuxt": "^3"}, scripts={"build": "nuxt build"})}
    assert plan_of(nuxt).start_cmd.value == "node .output/server/index.mjs"  # type: ignore[union-attr]
    nuxt_static = plan_of(
        {
            "package.json": pkg(
                dependencies={"nuxt": "^3"}, scripts={"build": "b", "generate": "nuxt generate"}
            ),
            "nuxt.config.ts": "export default defineNuxtConfig({ ssr: false })",
        }
    )
    assert nuxt_static.output_dir.value == ".output/public"  # type: ignore[union-attr]
    express = plan_of(
        {"package.json": pkg(dependencies={"express": "^5"}, scripts={"start": "node index.js"})}
    )
    assert express.framework.value == "express"  # type: ignore[union-attr]
    assert (express.build_type.value, express.start_cmd.value) == ("node", "npm run start")  # type: ignore[union-attr]
    assert resolve(express, {})["build_cmd"].value == ""  # nothing to build


def test_package_managers_from_lockfiles_and_the_package_manager_field() -> None:
    base = pkg(devDependencies={"vite": "^7"}, scripts={"build": "vite build"})
    berry = plan_of({"package.json": base, "yarn.lock": "__metadata:\n  version: 8\n"})
    assert berry.install_cmd.value == "yarn install --immutable"
    bun = plan_of({"package.json": base, "bun.lock": None})
    assert (bun.install_cmd.value, bun.build_cmd.value) == (  # type: ignore[union-attr]
        "bun install --frozen-lockfile",
        "bun run build",
    )
    loose = plan_of({"package.json": base})
    assert loose.install_cmd.value == "npm install"
    assert any("not reproducible" in w or "afresh" in w for w in loose.warnings)
    assert not loose.reuse_node_modules
    scripted = plan_of(
        {
            "package.json": pkg(
                devDependencies={"vite": "^7"}, scripts={"build": "b", "postinstall": "x"}
            ),
            "package-lock.json": None,
        }
    )
    assert not scripted.reuse_node_modules  # its own install scripts may write outside


@pytest.mark.parametrize(
    ("tree", "line", "source"),
    [
        ({".nvmrc": "lts/iron\n"}, "20", ".nvmrc"),
        ({".nvmrc": "v22.3.0\n"}, "22", ".nvmrc"),
        ({".node-version": "20.11.1"}, "20", ".node-version"),
        ({"engines": ">=18"}, "24", "package.json: engines.node '>=18'"),
        ({"engines": "18.x || 20.x"}, "20", "package.json: engines.node '18.x || 20.x'"),
        ({"engines": "^20.19.0 || >=22.12.0"}, "24", None),
        ({"engines": ">=20 <23"}, "22", None),
        ({"volta": "22.9.0"}, "22", "package.json: volta.node"),
        ({}, "24", None),
    ],
)
def test_node_lines_from_every_place_a_project_names_one(
    tree: dict[str, str], line: str, source: str | None
) -> None:
    fields: dict[str, object] = {"devDependencies": {"vite": "^7"}, "scripts": {"build": "b"}}
    if "engines" in tree:
        fields["engines"] = {"node": tree.pop("engines")}
    if "volta" in tree:
        fields["volta"] = {"node": tree.pop("volta")}
    plan = plan_of({"package.json": pkg(**fields), **tree})
    assert plan.node_version is not None
    assert plan.node_version.value == line
    if source:
        assert plan.node_version.source == source


def test_an_unsatisfiable_node_range_is_one_error_naming_the_file() -> None:
    plan = plan_of(
        {
            "package.json": pkg(
                devDependencies={"vite": "^7"}, scripts={"build": "b"}, engines={"node": "<18"}
            )
        }
    )
    with pytest.raises(DetectionError) as raised:
        resolve(plan, {})
    assert raised.value.field == "node_version"
    assert "package.json: engines.node '<18'" in str(raised.value)
    assert "20, 22, 24" in str(raised.value)
    # --node overrides the file.
    assert resolve(plan, {"node_version": "22"})["node_version"].source == "--node"
    pinned = plan_of({"package.json": pkg(scripts={"start": "node ."}), ".nvmrc": "16"})
    assert "pins Node 16" in pinned.problems["node_version"]


def test_an_undetectable_repo_names_the_flags_to_pass() -> None:
    plan = plan_of({"package.json": pkg(scripts={"build": "node build.js"})})
    with pytest.raises(DetectionError) as raised:
        resolve(plan, {})
    assert raised.value.field == "build_type"
    assert "--build-type" in str(raised.value)
    chosen = resolve(plan, {"build_type": "static", "output_dir": "dist"})
    assert chosen["build_cmd"].value == "npm run build"
    assert chosen["output_dir"].source == "--output-dir"
    empty = plan_of({"README.md": "hello"})
    with pytest.raises(DetectionError, match=r"no package\.json"):
        resolve(empty, {})


def test_an_app_in_a_monorepo_installs_at_the_workspace_root() -> None:
    tree = {
        "package.json": pkg(workspaces=["apps/*"]),
        "pnpm-lock.yaml": None,
        "pnpm-workspace.yaml": "packages: ['apps/*']",
        "apps/web/package.json": pkg(
            dependencies={"next": "16"}, scripts={"build": "next build", "start": "next start"}
        ),
        "apps/web/.nvmrc": "22",
    }
    plan = plan_of(tree, "apps/web/")
    assert (plan.root_dir, plan.install_dir) == ("apps/web", "")
    assert plan.install_cmd.value == "pnpm install --frozen-lockfile"
    assert plan.start_cmd.value == "pnpm run start"  # type: ignore[union-attr]
    assert plan.node_version.value == "22"  # type: ignore[union-attr]
    assert not plan.reuse_node_modules  # workspace installs are not copied
    with pytest.raises(DetectionError):
        plan_of(tree, "../outside")


async def test_a_subdirectory_app_is_read_through_git(tmp_path: Path) -> None:
    url = scaffold_repo("vite-vue", tmp_path / "mono.git", subdir="apps/site")
    files_read = await read_repo_files(
        url, "main", "apps/site", github_api=NO_GITHUB, github_token=None
    )
    plan = detect(files_read, "apps/site")
    assert plan.framework.value == "vite-vue"  # type: ignore[union-attr]
    assert plan.install_dir == "apps/site"
    assert plan.install_cmd.source == "apps/site/package-lock.json"


def test_a_workspace_root_that_is_not_an_app_names_the_apps_it_holds() -> None:
    library = pkg(name="@acme/ui", main="index.js")
    tree = {
        "package.json": pkg(private=True),
        "pnpm-lock.yaml": None,
        "pnpm-workspace.yaml": "packages:\n  - 'apps/*'\n  - 'packages/*'\n  - '!**/test'\n",
        "apps/web/package.json": pkg(
            dependencies={"next": "16"}, scripts={"build": "next build", "start": "next start"}
        ),
        "apps/docs/package.json": pkg(
            devDependencies={"vite": "^7"}, scripts={"build": "vite build"}
        ),
        "packages/ui/package.json": library,
    }
    plan = plan_of(tree)
    assert plan.workspace_apps == ("apps/docs", "apps/web")  # not the library
    said = plan.problems["build_type"]
    assert said.startswith("this is a pnpm workspace (pnpm-workspace.yaml), not an app")
    assert "--root apps/docs or --root apps/web" in said
    npm = plan_of(
        {
            "package.json": pkg(workspaces={"packages": ["apps/*"]}),
            "apps/site/package.json": pkg(scripts={"start": "node server.js"}),
        }
    )
    assert "this is an npm workspace" in npm.problems["build_type"]
    assert npm.workspace_apps == ("apps/site",)


async def test_a_workspace_is_read_through_git_with_its_members(tmp_path: Path) -> None:
    bare = tmp_path / "mono.git"
    url = scaffold_repo("vite-vue", bare, subdir="apps/web")
    push_change(bare, "pnpm-workspace.yaml", "packages:\n  - apps/*\n", "workspace")
    read = await read_repo_files(url, "main", "", github_api=NO_GITHUB, github_token=None)
    assert detect(read).workspace_apps == ("apps/web",)
