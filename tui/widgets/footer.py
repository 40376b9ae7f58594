"""Textual's Footer, built after the first frame and then at most once per frame.

Textual's Footer rebuilds its keys after every change of the screen's bindings, and each
rebuild mounts and styles a widget per key (~20 ms for the list's 13 keys on 2 cores).
Changes come in bursts (a screen mounts, the list takes focus, the first row is
highlighted): the first change of a frame schedules the rebuild, later ones only wait for
it (it reads the bindings as they are when it runs). Before the console's first frame no
rebuild is scheduled at all: ToastApp.on_ready asks for one once the frame is shown."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter

from tui.base import toast_app


class Footer(TextualFooter):
    def __init__(self) -> None:
        super().__init__()
        self._rebuild_scheduled = False

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._rebuild_scheduled or not toast_app(self).first_frame_shown:
            return
        self._rebuild_scheduled = True
        # Runs just before the rebuild Textual schedules below (callbacks keep their order).
        self.call_after_refresh(self._rebuild_taken)
        super().bindings_changed(screen)

    def _rebuild_taken(self) -> None:
        self._rebuild_scheduled = False
