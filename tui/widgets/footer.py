"""Textual's Footer, rebuilt at most once per frame.

Textual's Footer rebuilds its keys after every change of the screen's bindings. Changes
come in bursts (a screen mounts, the list takes focus, the first row is highlighted) and
each rebuild mounts and styles a widget per key: three at start-up took ~60 ms before the
first frame. The first change of a frame schedules the rebuild; later ones in that frame
only wait for it, and it reads the bindings as they are when it runs."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    def __init__(self) -> None:
        super().__init__()
        self._rebuild_scheduled = False

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._rebuild_scheduled:
            return
        self._rebuild_scheduled = True
        # Runs just before the rebuild Textual schedules below (callbacks keep their order).
        self.call_after_refresh(self._rebuild_taken)
        super().bindings_changed(screen)

    def _rebuild_taken(self) -> None:
        self._rebuild_scheduled = False
