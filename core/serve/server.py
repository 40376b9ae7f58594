"""`toast serve`: the engine, the webhook receiver, the poller and the hook keeper in one
asyncio process, one per data directory.

SIGTERM or Ctrl+C stops it cleanly: the engine hands its runs back (the next `toast serve`
or `toast engine` resumes them), the receiver stops listening, nothing is half-written."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from core.profile.config import Config
from core.runs.engine import Engine
from core.runs.launcher import hold_engine_lock, hold_serve_lock, serve_pid
from core.runs.states import DeploymentState
from core.runs.waiting import backoff_delays
from core.serve.hooks import HookKeeper
from core.serve.poller import Poller
from core.serve.receiver import Receiver
from core.serve.ssh import SshConsole, SshOptions
from storage import Queries, open_database

#: How often live deployments are checked for a missing webhook (a DB read each).
HOOK_CHECK_S = 3.0


class ServeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServeOptions:
    #: Where the webhook receiver listens; None: no receiver (polling only).
    webhook_listen: tuple[str, int] | None = ("127.0.0.1", 8787)
    poll: bool = True
    poll_interval: float = 60.0
    #: The team's console over SSH; None: no SSH server.
    ssh: SshOptions | None = None


class Serve:
    def __init__(
        self, db_path: Path, config: Config, options: ServeOptions, say: Callable[[str], None]
    ) -> None:
        self.db_path = db_path
        self.config = config
        self.options = options
        self.say = say
        self.engine = Engine(db_path, idle_exit_s=None, say=say)
        #: The address the receiver really listens on (port 0 asks for a free one).
        self.listening: tuple[str, int] | None = None
        self.ssh_listening: tuple[str, int] | None = None

    async def run(self) -> None:
        serve_lock = hold_serve_lock()
        if serve_lock is None:
            raise ServeError(
                f"toast serve is already running for this data directory (pid {serve_pid()}); "
                "stop it first, or use another TOAST_DATA_DIR"
            )
        engine_lock: int | None = None
        try:
            engine_lock = await self._take_engine_lock()
            await self._serve()
        finally:
            for fd in (engine_lock, serve_lock):
                if fd is not None:
                    os.close(fd)

    async def _take_engine_lock(self) -> int:
        """The engine is part of `toast serve`; a `toast engine` started before it finishes
        its runs and exits when idle, and serve takes over then."""
        delays = backoff_delays(initial=0.2, maximum=2.0)
        said = False
        while (fd := hold_engine_lock()) is None:
            if not said:
                self.say("waiting for the running `toast engine` to finish and exit")
                said = True
            await asyncio.sleep(next(delays))
        return fd

    async def _serve(self) -> None:
        db = await open_database(self.db_path)
        queries = Queries(db)
        stop = self.engine.stopping
        runner: web.AppRunner | None = None
        ssh: SshConsole | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            engine = asyncio.create_task(self.engine.run())
            if self.options.ssh is not None:
                await queries.close_open_sessions()  # ended with the last serve
                ssh = SshConsole(self.options.ssh, self.say, queries)
                try:
                    host, port = await ssh.start()
                except OSError as exc:
                    self.engine.stop("cannot listen for ssh")
                    await engine
                    listen = self.options.ssh.listen
                    raise ServeError(
                        f"cannot listen for ssh on {listen[0]}:{listen[1]}: "
                        f"{exc.strerror or exc}; choose another --ssh-listen"
                    ) from exc
                self.ssh_listening = (host, port)
                self.say(f"ssh: listening on {host}:{port}; host key {ssh.fingerprint}")
            if self.options.webhook_listen is not None:
                host, port = self.options.webhook_listen
                runner = web.AppRunner(
                    Receiver(queries, self.say).app(), handle_signals=False, access_log=None
                )
                await runner.setup()
                site = web.TCPSite(runner, host, port)
                try:
                    await site.start()
                except OSError as exc:
                    self.engine.stop(f"cannot listen on {host}:{port}")
                    await engine
                    raise ServeError(
                        f"cannot listen for webhooks on {host}:{port}: {exc.strerror or exc}; "
                        "choose another --webhook-listen"
                    ) from exc
                bound = runner.addresses[0] if runner.addresses else (host, port)
                self.listening = (str(bound[0]), int(bound[1]))
                self.say(
                    f"webhooks: listening on http://{self.listening[0]}:{self.listening[1]}"
                    "/github/NAME"
                )
            keeper = HookKeeper(queries, self.config, self.say)
            poller = Poller(queries, self.config, keeper, self.say, self.options.poll_interval)
            tasks.append(asyncio.create_task(poller.run(stop, poll=self.options.poll)))
            tasks.append(asyncio.create_task(self._keep_hooks(queries, keeper, stop)))
            self.say(
                "serving: engine running; "
                + (
                    f"polling every {self.options.poll_interval:.0f} s"
                    if self.options.poll
                    else "polling off (a catch-up at start only)"
                )
            )
            await engine
        finally:
            self.engine.stop("toast serve is stopping")
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if runner is not None:
                await runner.cleanup()
            if ssh is not None:
                await ssh.stop()
            await db.close()
            self.say("toast serve stopped")

    async def _keep_hooks(self, queries: Queries, keeper: HookKeeper, stop: asyncio.Event) -> None:
        said: dict[int, str] = {}  # a failure is said once, not every few seconds
        while not stop.is_set():
            for deployment in await queries.list_deployments():
                if deployment.state == DeploymentState.LIVE:
                    try:
                        await keeper.ensure(deployment)
                    except Exception as exc:
                        problem = f"webhook for {deployment.name}: {type(exc).__name__}: {exc}"
                        if said.get(deployment.id) != problem:
                            said[deployment.id] = problem
                            self.say(f"{problem}; trying again")
                    else:
                        said.pop(deployment.id, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=HOOK_CHECK_S)
