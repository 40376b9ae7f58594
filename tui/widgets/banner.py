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

    def _render_banner(self, detail: str) -> None:
        profile = self.toast.profile
        if profile.is_sandbox:
            self.add_class("sandbox")
            text = "SANDBOX: a local rehearsal cloud on 127.0.0.1; nothing here reaches AWS"
            self.update(f"{text} · {detail}" if detail else text)
        else:
            self.update(
                f"AWS profile {profile.aws_profile or 'default'} · {profile.region} · "
                f"*.{profile.base_domain}"
            )
