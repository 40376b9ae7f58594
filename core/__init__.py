"""Toast's engine: deploy steps, jobs, the resource ledger, AWS, SSH, GitHub, logs, the sandbox.

Never imports textual or rich.
"""

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _SkipHttpxCommandLine(importlib.abc.MetaPathFinder):
    """httpx imports its optional command line (and with it rich) whenever rich is installed,
    which Textual guarantees. httpx falls back cleanly when that import fails, so refuse it:
    the engine stays free of UI libraries and starts faster."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "httpx._main":
            raise ImportError("Toast does not use the httpx command line")
        return None


if not any(isinstance(f, _SkipHttpxCommandLine) for f in sys.meta_path):
    sys.meta_path.insert(0, _SkipHttpxCommandLine())
