"""Everything Toast runs or writes on an app's host, as data built by pure functions.

Commands are argv tuples. `render` quotes each word exactly once (shlex.join), and
`chain` joins rendered commands with `&&`; the host's shell parses the result once.
No user value is ever pasted into shell text without passing through `render`.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass

from core.hosts import HostProfile

Argv = tuple[str, ...]


def render(argv: Argv) -> str:
    return shlex.join(argv)


def chain(*commands: Argv) -> str:
    return " && ".join(render(c) for c in commands)


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
    def run_dir(self) -> str:
        return posixpath.join(self.app_dir, "run")

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
RUNNER_JS = r"""'use strict';
// toast-run ENV_JSON LOG_FILE CWD SECRET_NAMES -- COMMAND [ARGS...]   (written by Toast)
// SECRET_NAMES: comma-separated names in ENV_JSON whose values never reach the output or
// the log (each line is filtered before it is written), or '-' for none.
const fs = require('fs');
const os = require('os');
const { spawn } = require('child_process');
const args = process.argv.slice(2);
const sep = args.indexOf('--');
if (sep !== 4 || args.length < 6) {
  console.error('usage: toast-run ENV LOG CWD SECRET_NAMES -- CMD...');
  process.exit(64);
}
const [envFile, logFile, cwd, secretNames] = args;
const argv = args.slice(5);
const extra = envFile === '-' ? {} : JSON.parse(fs.readFileSync(envFile, 'utf8'));
const secrets = [];
for (const name of secretNames === '-' ? [] : secretNames.split(',')) {
  const value = extra[name];
  if (typeof value !== 'string') continue;
  for (const part of [value, ...value.split('\n')]) {
    if (part.length >= 4 && !secrets.includes(part)) secrets.push(part);
  }
}
secrets.sort((a, b) => b.length - a.length);
const redact = (text) => {
  for (const secret of secrets) text = text.split(secret).join('[REDACTED]');
  return text;
};
const log = logFile === '-' ? null : fs.openSync(logFile, 'a', 0o640);
const child = spawn(argv[0], argv.slice(1), {
  cwd, env: { ...process.env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'],
});
const emit = (text) => {
  if (!text) return;
  process.stdout.write(text);
  if (log !== null) fs.writeSync(log, text);
};
// Whole lines only: a secret split across two chunks is still one line. A secret with
// newlines in it is caught line by line.
const pending = { out: '', err: '' };
const copy = (key) => (chunk) => {
  pending[key] += chunk.toString('utf8');
  const cut = pending[key].lastIndexOf('\n');
  if (cut < 0 && pending[key].length < 65536) return;
  const upto = cut < 0 ? pending[key].length : cut + 1;
  emit(redact(pending[key].slice(0, upto)));
  pending[key] = pending[key].slice(upto);
};
child.stdout.on('data', copy('out'));
child.stderr.on('data', copy('err'));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('error', (err) => {
  emit(`toast-run: cannot start ${argv[0]}: ${err.message}\n`);
  process.exit(127);
});
child.on('close', (code, signal) => {
  emit(redact(pending.out) + redact(pending.err));
  process.exit(code === null ? 128 + (os.constants.signals[signal] || 1) : code);
});
"""


def env_json(values: dict[str, str]) -> bytes:
    return json.dumps(values, ensure_ascii=False, sort_keys=True).encode("utf-8")


def mkdirs(*paths: str) -> Argv:
    return ("mkdir", "-p", *paths)


def fetch_source(repo_url: str, branch: str, into: str) -> str:
    """Shallow-fetch the branch head into a fresh directory and print its sha and subject.

    A token, when there is one, arrives on stdin and is handed to git through its
    environment (GIT_CONFIG_*): never on a command line, on disk or in a log.
    """
    token_env = (
        'IFS= read -r TOAST_TOKEN || true; if [ -n "$TOAST_TOKEN" ]; then '
        "export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader "
        'GIT_CONFIG_VALUE_0="Authorization: Bearer $TOAST_TOKEN"; fi; unset TOAST_TOKEN'
    )
    return "; ".join(
        [
            token_env,
            chain(
                ("rm", "-rf", into),
                ("git", "init", "--quiet", into),
                (
                    "git",
                    "-C",
                    into,
                    "fetch",
                    "--quiet",
                    "--depth",
                    "1",
                    repo_url,
                    f"refs/heads/{branch}",
                ),
                ("git", "-C", into, "checkout", "--quiet", "FETCH_HEAD"),
                ("git", "-C", into, "log", "-1", "--format=%H%n%s"),
            ),
        ]
    )


def adopt_release(incoming: str, release: str) -> str:
    """Move a fetched tree to releases/<sha>, replacing an unfinished build of the same sha."""
    return chain(("rm", "-rf", release), ("mv", "-T", incoming, release))


def secret_list(names: list[str] | tuple[str, ...]) -> str:
    return ",".join(names) or "-"


def start_log(log: str, header: str) -> str:
    """Append a header line to a log that only its owner (and root) may read."""
    quoted = shlex.quote(log)
    return (
        f"mkdir -p {shlex.quote(posixpath.dirname(log))} && (umask 027; "
        f"echo {shlex.quote(header)} >> {quoted}) && chmod 0640 {quoted}"
    )


def run_in_release(
    paths: AppPaths,
    release: str,
    command: str,
    *,
    env_file: str | None,
    log: str,
    redact: list[str] | tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run a validated single command (install or build) through the runner, which keeps
    the values of the `redact` env names out of its output and the log."""
    argv = tuple(shlex.split(command))
    prefix: Argv = ("env", *(f"{k}={v}" for k, v in sorted((extra_env or {}).items())))
    return render(
        (
            *prefix,
            "node",
            paths.runner,
            env_file or "-",
            log,
            release,
            secret_list(redact),
            "--",
            *argv,
        )
    )


def prune_releases(paths: AppPaths, release_dirs: list[str]) -> Argv:
    """Remove old release directories (each checked to lie inside the releases dir)."""
    for directory in release_dirs:
        if posixpath.dirname(directory) != paths.releases or posixpath.basename(directory) in (
            "",
            ".",
            "..",
        ):
            raise ValueError(f"not a release directory of {paths.name}: {directory!r}")
    return ("rm", "-rf", "--", *release_dirs)


def start_node_app(
    paths: AppPaths,
    release: str,
    start_cmd: str,
    port: int,
    redact: list[str] | tuple[str, ...] = (),
) -> str:
    """Start the app detached in its own session; prints its PID (the process group id)."""
    argv = tuple(shlex.split(start_cmd))
    run = render(
        (
            "env",
            f"PORT={port}",
            "NODE_ENV=production",
            "setsid",
            "node",
            paths.runner,
            paths.env_file,
            paths.app_log,
            release,
            secret_list(redact),
            "--",
            *argv,
        )
    )
    pid_file = shlex.quote(paths.pid_file(port))
    return (
        f"{render(mkdirs(paths.run_dir))} && {{ {run} </dev/null >/dev/null 2>&1 & "
        f"echo $! > {pid_file}; cat {pid_file}; }}"
    )


def stop_node_app(paths: AppPaths, port: int) -> str:
    """Stop the app started on `port` (its whole process group); fine if it already exited."""
    pid_file = shlex.quote(paths.pid_file(port))
    return (
        f'if [ -f {pid_file} ]; then kill -TERM -- -"$(cat {pid_file})" 2>/dev/null; '
        f"rm -f {pid_file}; fi; true"
    )


def local_http_ok(port: int, path: str = "/") -> Argv:
    """Exit 0 when the app answers on 127.0.0.1:port with a status below 500."""
    script = (
        "fetch(process.argv[1]).then(r => process.exit(r.status < 500 ? 0 : 1))"
        ".catch(() => process.exit(1))"
    )
    return ("node", "-e", script, f"http://127.0.0.1:{port}{path}")


def switch_current(paths: AppPaths, target: str) -> str:
    """Point `current` at `target` atomically (rename over the old link)."""
    tmp = paths.current + ".new"
    return chain(("ln", "-sfn", target, tmp), ("mv", "-T", tmp, paths.current))


def reload_nginx(host: HostProfile) -> str:
    return render(host.nginx_reload)


def nginx_workers(host: HostProfile) -> str:
    """Print the PIDs of nginx's current workers (children of the master)."""
    return f"pgrep -P \"$(cat {shlex.quote(host.nginx_pid_file)})\" | sort -n | tr '\\n' ' '"


def certbot_certonly(host: HostProfile, fqdn: str, acme_server: str | None = None) -> str:
    """Issue (or keep) a certificate through HTTP-01 on the webroot; serialised per host,
    because two certbot runs at once fail."""
    argv: Argv = (
        "certbot",
        "certonly",
        "--webroot",
        "-w",
        host.acme_webroot,
        "-d",
        fqdn,
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--keep-until-expiring",
        "--no-random-sleep-on-renew",
        "--config-dir",
        host.certbot_dir,
        "--work-dir",
        posixpath.join(host.certbot_dir, "work"),
        "--logs-dir",
        posixpath.join(host.certbot_dir, "logs"),
        "--deploy-hook",
        render(host.nginx_reload),
    )
    server = acme_server or host.acme_server
    if server:
        argv = (*argv, "--server", server)
    env: Argv = ("env", *(f"{k}={v}" for k, v in sorted(host.certbot_env.items())))
    lock = posixpath.join(host.certbot_dir, "toast-certbot.lock")
    return render((*env, "flock", lock, *argv))


def certbot_delete(host: HostProfile, fqdn: str) -> str:
    argv: Argv = (
        "certbot",
        "delete",
        "--non-interactive",
        "--cert-name",
        fqdn,
        "--config-dir",
        host.certbot_dir,
        "--work-dir",
        posixpath.join(host.certbot_dir, "work"),
        "--logs-dir",
        posixpath.join(host.certbot_dir, "logs"),
    )
    lock = posixpath.join(host.certbot_dir, "toast-certbot.lock")
    return render(("flock", lock, *argv)) + " || true"


def cert_enddate(host: HostProfile, fqdn: str) -> Argv:
    cert = posixpath.join(host.certbot_dir, "live", fqdn, "cert.pem")
    return ("openssl", "x509", "-enddate", "-noout", "-in", cert)


def nginx_site(
    paths: AppPaths, fqdn: str, *, https: bool, static_root: str | None, upstream_port: int | None
) -> str:
    """The site config Toast owns. HTTP serves ACME challenges and redirects; HTTPS serves
    the app once a certificate exists."""
    host = paths.host
    q = _nginx_quote
    lines = [
        "# Written by Toast. Changes here are overwritten on the next deploy.",
        "server {",
        f"    listen {host.http_listen};",
        f"    server_name {fqdn};",
        f"    access_log {q(paths.access_log)};",
        f"    error_log {q(paths.error_log)};",
        f"    location /.well-known/acme-challenge/ {{ root {q(host.acme_webroot)}; }}",
        "    location / { return 301 https://$host$request_uri; }"
        if https
        else "    location / { return 503; }",
        "}",
    ]
    if https:
        live = posixpath.join(host.certbot_dir, "live", fqdn)
        lines += [
            "server {",
            f"    listen {host.https_listen} ssl;",
            f"    server_name {fqdn};",
            f"    ssl_certificate {q(posixpath.join(live, 'fullchain.pem'))};",
            f"    ssl_certificate_key {q(posixpath.join(live, 'privkey.pem'))};",
            f"    access_log {q(paths.access_log)};",
            f"    error_log {q(paths.error_log)};",
        ]
        if static_root is not None:
            lines += [
                f"    root {q(static_root)};",
                "    location / { try_files $uri $uri/ /index.html; }",
            ]
        elif upstream_port is not None:
            lines += [
                "    location / {",
                f"        proxy_pass http://127.0.0.1:{upstream_port};",
                "        proxy_set_header Host $host;",
                "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "        proxy_set_header X-Forwarded-Proto https;",
                "        proxy_next_upstream error timeout http_502;",
                "    }",
            ]
        lines.append("}")
    return "\n".join(lines) + "\n"


def _nginx_quote(value: str) -> str:
    if any(c in value for c in '"\\\n;{}'):
        raise ValueError(f"path not allowed in nginx config: {value!r}")
    return f'"{value}"'


def agent_config(paths_list: list[AppPaths]) -> bytes:
    """CloudWatch agent config (the real agent's shape) shipping each app's logs."""
    collect = []
    for paths in paths_list:
        for source, file in (
            ("build", paths.build_log),
            ("app", paths.app_log),
            ("access", paths.access_log),
            ("error", paths.error_log),
        ):
            collect.append(
                {
                    "file_path": file,
                    "log_group_name": log_group(paths.name, source),
                    "log_stream_name": "{instance_id}",
                    "retention_in_days": 30,
                }
            )
    return json.dumps(
        {"logs": {"logs_collected": {"files": {"collect_list": collect}}}}, indent=2
    ).encode()


LOG_SOURCES = ("build", "access", "error", "app")


def log_group(name: str, source: str) -> str:
    return f"/toast/{name}/{source}"
