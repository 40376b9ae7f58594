"""Where one deployment lives on its host."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from core.host.profiles import HostProfile


@dataclass(frozen=True)
class AppPaths:
    """Where one deployment lives on its host."""

    host: HostProfile
    name: str

    @property
    def app_dir(self) -> str:
        return posixpath.join(self.host.root, "apps", self.name)

    @property
    def releases(self) -> str:
        return posixpath.join(self.app_dir, "releases")

    def release(self, sha: str, run_id: int) -> str:
        """A build's own directory: one per run, so no build ever writes into another
        (the live release, a rollback target, or an earlier build of the same commit)."""
        return posixpath.join(self.releases, f"{sha}-r{run_id}")

    def incoming(self, run_id: int) -> str:
        return posixpath.join(self.releases, f".incoming-{run_id}")

    @property
    def current(self) -> str:
        return posixpath.join(self.app_dir, "current")

    @property
    def env_file(self) -> str:
        return posixpath.join(self.app_dir, "env.json")

    @property
    def app_env_file(self) -> str:
        """The running app's own copy of the env file (0600, the app user's), where the app
        runs as a user of its own."""
        return posixpath.join(self.app_dir, "app-env.json")

    @property
    def run_dir(self) -> str:
        return posixpath.join(self.app_dir, "run")

    @property
    def build_pid(self) -> str:
        """The process group of the build command running now (see as_build_process)."""
        return posixpath.join(self.app_dir, "build.pid")

    def pid_file(self, port: int) -> str:
        return posixpath.join(self.run_dir, f"{port}.pid")

    @property
    def log_dir(self) -> str:
        return posixpath.join(self.host.log_dir, self.name)

    @property
    def build_log(self) -> str:
        return posixpath.join(self.log_dir, "build.log")

    @property
    def app_log(self) -> str:
        return posixpath.join(self.log_dir, "app.log")

    @property
    def access_log(self) -> str:
        return posixpath.join(self.log_dir, "access.log")

    @property
    def error_log(self) -> str:
        return posixpath.join(self.log_dir, "error.log")

    @property
    def site_conf(self) -> str:
        return posixpath.join(self.host.nginx_sites_dir, f"toast-{self.name}.conf")

    @property
    def runner(self) -> str:
        return posixpath.join(self.host.root, "bin", "toast-run.js")


#: Runs a command with the app's environment (from a JSON file, so any byte sequence a
#: value holds survives), copying its output to stdout and to a log file.
