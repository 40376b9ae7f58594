"""Everything Toast runs or writes on an app's host, as data built by pure functions, one
module per remote tool (as Kamal keeps its commands): git, the runner, node, nginx,
certbot, the CloudWatch agent, release directories.

Commands are argv tuples. `render` quotes each word exactly once (shlex.join), and
`chain` joins rendered commands with `&&`; the host's shell parses the result once.
No user value is ever pasted into shell text without passing through `render`.
"""

from __future__ import annotations

import shlex

Argv = tuple[str, ...]


def render(argv: Argv) -> str:
    return shlex.join(argv)


def chain(*commands: Argv) -> str:
    return " && ".join(render(c) for c in commands)


def mkdirs(*paths: str) -> Argv:
    return ("mkdir", "-p", *paths)
