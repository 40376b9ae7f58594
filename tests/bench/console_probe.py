"""Runs the console (or a bare Textual app) headless in a process of its own and prints
when things happened, in seconds after the parent started it (PROBE_T0, wall clock):

    paint T      the first frame was written (what a terminal would show first)
    rows T N     the Deployments list shows N rows on screen
    idle CPU_S BYTES FRAMES LINES   over PROBE_IDLE_S seconds of doing nothing: CPU seconds
                 (all threads), bytes and frames a terminal would have been sent, list
                 lines drawn
    modules M    whether boto3 / moto were imported by then

python console_probe.py bare|deployments|logs DB [NAME]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

T0 = float(os.environ.get("PROBE_T0", time.time()))
IDLE_S = float(os.environ.get("PROBE_IDLE_S", "0"))


def mark(*fields: object) -> None:
    print(*fields, flush=True)


def since() -> str:
    return f"{time.time() - T0:.4f}"


def watch_frames(app: object, written: Callable[[], None]) -> None:
    """Call `written` after each frame the app writes. Marks are taken there, not in a
    call_after_refresh: that runs behind whatever was queued before it (the console's
    reads of SQLite), up to 150 ms after the frame was on screen."""
    from textual._compositor import CompositorUpdate

    original = app._display  # type: ignore[attr-defined]

    def display(screen: object, renderable: object) -> None:
        original(screen, renderable)
        if isinstance(renderable, CompositorUpdate):
            written()

    app._display = display  # type: ignore[attr-defined]


def main() -> None:
    mode = sys.argv[1]
    if mode == "bare":
        from textual.app import App, ComposeResult
        from textual.widgets import Footer, Header, Static

        class Bare(App[None]):
            def compose(self) -> ComposeResult:
                yield Header()
                yield Static("hello")
                yield Footer()

            def on_mount(self) -> None:
                watch_frames(self, self.written)

            def written(self) -> None:
                mark("paint", since())
                self.exit()

        Bare().run(headless=True, size=(160, 50))
        return

    from pathlib import Path

    from core.profile.config import sandbox_profile
    from tui.app import ToastApp
    from tui.widgets.row_table import RowTable

    db_path = Path(sys.argv[2])

    class Probe(ToastApp):
        painted = False
        rows_shown = False

        def on_mount(self) -> None:
            # Not super().on_mount(): Textual calls every class's handler along the MRO
            # itself, so ToastApp's runs after this one (calling it here ran it twice).
            watch_frames(self, self.written)

        def written(self) -> None:
            if not self.painted:
                self.painted = True
                mark("paint", since())
            if self.rows_shown:
                return
            tables = self.screen.query(RowTable)
            if tables and tables.first().row_count:  # this frame shows rows
                self.rows_shown = True
                mark("rows", since(), tables.first().row_count)
                self.call_later(self.shown)

        def shown(self) -> None:
            mods = [m for m in ("boto3", "moto") if m in sys.modules]
            mark("modules", ",".join(mods) or "-")
            if mode == "logs":
                from tui.screens.logs import LogsScreen

                self.push_screen(LogsScreen(sys.argv[3], "sandbox"))
                # the tails connect, and after 10 s without lines say "idle" (a real change)
                self.set_timer(13.0, self.measure_idle)
            elif IDLE_S:
                self.set_timer(1.5, self.when_settled)
            else:
                self.exit()

        def when_settled(self) -> None:
            """Idle starts once start-up work is done: the background import of the AWS SDK
            (WARM_AFTER_S after mount) is start-up, not idling, and runs in a thread whose
            CPU the window would count."""
            if any(not worker.is_finished for worker in self.workers):
                self.set_timer(0.1, self.when_settled)
            else:
                self.measure_idle()

        def measure_idle(self) -> None:
            # Headless apps compose frames but write them nowhere: count what a terminal
            # would have been sent.
            from textual._compositor import CompositorUpdate

            written = [0, 0]  # bytes, frames
            original = self._display

            def counting(screen: object, renderable: object) -> None:
                if isinstance(renderable, CompositorUpdate):
                    written[0] += len(renderable.render_segments(self.console).encode())
                    written[1] += 1
                original(screen, renderable)  # type: ignore[arg-type]

            self._display = counting  # type: ignore[method-assign]
            table = self.screen.query_one(RowTable) if mode != "logs" else None
            lines_before = table.repaints if table else 0
            cpu_before = time.process_time()

            def done() -> None:
                cpu = time.process_time() - cpu_before
                lines = (table.repaints - lines_before) if table else 0
                mark("idle", f"{cpu:.4f}", written[0], written[1], lines)
                self.exit()

            self.set_timer(IDLE_S, done)

    # Headless: frames are composed as on a terminal, written to nowhere (counted above).
    os.environ.setdefault("TEXTUAL_FPS", "60")
    Probe(sandbox_profile(), db_path, start_sandbox=False).run(headless=True, size=(160, 50))


if __name__ == "__main__":
    main()
