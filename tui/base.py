"""The console's typed handle on its app: screens and widgets reach ToastApp's profile,
database and actions through `toast`, not through `self.app` (typed as any App)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from tui.app import ToastApp


def toast_app(node: DOMNode) -> ToastApp:
    """The ToastApp `node` runs in (every screen and widget of the console does)."""
    return cast("ToastApp", node.app)


class ToastNode:
    """Mixed into a console Screen or Widget: `self.toast` is its app, typed."""

    @property
    def toast(self) -> ToastApp:
        assert isinstance(self, DOMNode)
        return toast_app(self)
