"""Secrets never reach SQLite, logs or the screen: every line passes through a Redactor."""

from __future__ import annotations

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every known secret value (longest first, so overlapping secrets stay hidden)."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        # Very short values would redact ordinary text everywhere and protect nothing.
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)
            for line in secret.splitlines():
                if len(line) >= 4 and line not in self._secrets:
                    self._secrets.append(line)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text
