"""One line under the header saying which cloud the console commands: AWS or the sandbox."""

from __future__ import annotations

from textual.widgets import Static

from tui.base import ToastNode


class ProfileBanner(ToastNode, Static):
    DEFAULT_CSS = """
    ProfileBanner { height: 1; padding: 0 1; background: $primary-background; }
    ProfileBanner.sandbox { background: $warning 30%; color: $text; text-style: bold; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "sandbox_detail", self._render_banner)
        self.watch(self.app, "serve_status", self._render_banner)

    def _render_banner(self, _changed: str = "") -> None:
        profile = self.toast.profile
        serve = self.toast.serve_status
        if profile.is_sandbox:
            self.add_class("sandbox")
            parts = ["SANDBOX: a local rehearsal cloud on 127.0.0.1; nothing here reaches AWS"]
            parts += [p for p in (self.toast.sandbox_detail, serve) if p]
        else:
            parts = [
                f"AWS profile {profile.aws_profile or 'default'}",
                profile.region,
                f"*.{profile.base_domain}",
            ]
            parts += [serve] if serve else []
        self.update(" · ".join(parts))
