"""toast-run: runs install, build and app commands with the deployment's environment,
copying their output to a log with the secret values filtered out."""

from __future__ import annotations

import json
import posixpath
import shlex

from core.commands import Argv, render
from core.host.layout import AppPaths

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
// A partial line flushed early keeps this many characters back: the start of a secret whose
// end has not arrived yet is never written.
const holdBack = secrets.length ? secrets[0].length - 1 : 0;
const redact = (text) => {
  for (const secret of secrets) text = text.split(secret).join('[REDACTED]');
  return text;
};
const env = { ...process.env, ...extra };
// Toast's own tools (pnpm and yarn shims, bun) come before the system's.
if (process.env.TOAST_PATH_PREFIX) env.PATH = `${process.env.TOAST_PATH_PREFIX}:${env.PATH || ''}`;
// TOAST_RESTART=1: supervise (where the host has no systemd): whenever the command exits,
// start it again after a backoff (1 s doubling to 10 s; back to 1 s after 30 s up), until
// this runner is told to stop. The same contract as systemd's Restart=always.
const restart = process.env.TOAST_RESTART === '1';
delete env.TOAST_PATH_PREFIX;
delete env.TOAST_RESTART;
const log = logFile === '-' ? null : fs.openSync(logFile, 'a', 0o640);
const emit = (text) => {
  if (!text) return;
  process.stdout.write(text);
  if (log !== null) fs.writeSync(log, text);
};
// Output to a pipe is written asynchronously: exit only once what was written has left,
// or the last lines (often the error that matters) are lost.
const quit = (code) => process.stdout.write('', () => process.exit(code));
let child = null;
let stopping = false;
let delay = 1000;
const start = () => {
  const startedAt = Date.now();
  // Whole lines only: a secret split across two chunks is still one line. A secret with
  // newlines in it is caught line by line. A line longer than 64 KiB is written in pieces,
  // redacted first and cut short of a secret's length, so no piece ends inside a secret.
  const pending = { out: '', err: '' };
  const copy = (key) => (chunk) => {
    pending[key] += chunk;
    const cut = pending[key].lastIndexOf('\n');
    if (cut >= 0) {
      emit(redact(pending[key].slice(0, cut + 1)));
      pending[key] = pending[key].slice(cut + 1);
      return;
    }
    if (pending[key].length < 65536) return;
    const text = redact(pending[key]);
    const upto = text.length - holdBack;
    emit(text.slice(0, upto));
    pending[key] = text.slice(upto);
  };
  child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Decoded by the stream, so a character split across two chunks stays whole.
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', copy('out'));
  child.stderr.on('data', copy('err'));
  child.on('error', (err) => {
    emit(`toast-run: cannot start ${argv[0]}: ${err.message}\n`);
    quit(127);
  });
  child.on('close', (code, signal) => {
    emit(redact(pending.out) + redact(pending.err));
    if (restart && !stopping) {
      if (Date.now() - startedAt > 30000) delay = 1000;
      const why = signal || code;
      emit(`toast-run: ${argv.join(' ')} exited (${why}); restarting in ${delay / 1000} s\n`);
      setTimeout(start, delay);
      delay = Math.min(delay * 2, 10000);
      return;
    }
    quit(code === null ? 128 + (os.constants.signals[signal] || 1) : code);
  });
};
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    stopping = true;
    if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
    else process.exit(0);
  });
}
start();
"""


def env_json(values: dict[str, str]) -> bytes:
    return json.dumps(values, ensure_ascii=False, sort_keys=True).encode("utf-8")


def secret_list(names: list[str] | tuple[str, ...]) -> str:
    return ",".join(names) or "-"


def as_build_process(paths: AppPaths, command: str) -> str:
    """A build command (rendered) that records its process group while it runs, so a later
    try of the build (after a lost connection, or an engine killed mid-build) can stop it
    before touching the same directories. sshd runs each command in a session of its own:
    the shell's pid is the group's. The record goes when the command ends."""
    pidfile = shlex.quote(paths.build_pid)
    return f"echo $$ > {pidfile}; ( {command} ); status=$?; rm -f {pidfile}; exit $status"


#: How long an earlier build is given to stop on SIGTERM before SIGKILL (in 0.1 s polls).
STOP_POLLS = 50


def stop_earlier_build(paths: AppPaths) -> str:
    """Stop the build command an earlier try left running (its process group), waiting
    for it to go; says so when there was one."""
    pidfile = shlex.quote(paths.build_pid)
    return (
        f"pid=$(cat {pidfile} 2>/dev/null) || exit 0; "
        f'case "$pid" in ""|*[!0-9]*) rm -f {pidfile}; exit 0;; esac; '
        f'kill -TERM "-$pid" 2>/dev/null || {{ rm -f {pidfile}; exit 0; }}; '
        f'i=0; while kill -0 "-$pid" 2>/dev/null && [ "$i" -lt {STOP_POLLS} ]; do '
        "sleep 0.1; i=$((i + 1)); done; "
        f'kill -KILL "-$pid" 2>/dev/null; rm -f {pidfile}; '
        'echo "stopped an earlier build still running (process group $pid)"'
    )


def start_log(log: str, header: str) -> str:
    """Append a header line to a log that only its owner (and root) may read."""
    quoted = shlex.quote(log)
    return (
        f"mkdir -p {shlex.quote(posixpath.dirname(log))} && (umask 027; "
        f"echo {shlex.quote(header)} >> {quoted}) && chmod 0640 {quoted}"
    )


def run_in_release(
    paths: AppPaths,
    cwd: str,
    command: str,
    *,
    env_file: str | None,
    log: str,
    redact: list[str] | tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    node: str = "node",
) -> str:
    """Run a validated single command (install or build) in `cwd` through the runner, which
    keeps the values of the `redact` env names out of its output and the log."""
    argv = tuple(shlex.split(command))
    prefix: Argv = ("env", *(f"{k}={v}" for k, v in sorted((extra_env or {}).items())))
    return render(
        (
            *prefix,
            node,
            paths.runner,
            env_file or "-",
            log,
            cwd,
            secret_list(redact),
            "--",
            *argv,
        )
    )
