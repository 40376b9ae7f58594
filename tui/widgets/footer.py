"""The key hints at the bottom of every screen."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """Textual's Footer, rebuilt once however often the bindings changed before the next
    frame. Textual's rebuilds it for each change, and the Deployments screen's start changes
    them five times (focus, mount, the first rows), each rebuild a widget per key. Coalesced
    (three rebuilds), the rows came about 100 ms sooner after the first frame on 2 cores."""

    _rebuild_pending = False

    def bindings_changed(self, screen: Screen[object]) -> None:
        # As Footer.bindings_changed (Textual 8.2.8, pinned), with the rebuilds coalesced.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        await self.recompose()
