"""The console's themes: Textual's dark and light, and a high-contrast one of Toast's own
(pure black and white, saturated accents, for bright rooms and weak eyes)."""

from __future__ import annotations

from textual.theme import Theme

HIGH_CONTRAST = Theme(
    name="toast-high-contrast",
    primary="#FFFF00",
    secondary="#00FFFF",
    accent="#FF00FF",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#303030",
    success="#00FF00",
    warning="#FFAF00",
    error="#FF3030",
    dark=True,
)

#: [console] theme -> Textual theme name.
TEXTUAL_THEMES = {
    "dark": "textual-dark",
    "light": "textual-light",
    "high-contrast": HIGH_CONTRAST.name,
}
