"""The Node.js lines Toast offers: the ones Amazon Linux 2023 packages, with their npm.

Source: "Node.js in AL2023", Amazon Linux 2023 User Guide
(docs.aws.amazon.com/linux/al2023/ug/nodejs.html): AL2023 ships Node.js 20, 22 and 24,
namespaced as `nodejs{N}` with npm in a separate `nodejs{N}-npm` package, and selected
with `alternatives --set node /usr/bin/node-{N}`. A line not in this table cannot be
installed on the instance, so it is refused before anything is launched.
"""

from __future__ import annotations

#: major -> the dnf packages that provide node and npm for it.
AL2023_NODE = {
    "20": ("nodejs20", "nodejs20-npm"),
    "22": ("nodejs22", "nodejs22-npm"),
    "24": ("nodejs24", "nodejs24-npm"),
}
DEFAULT_NODE = "24"


def packages(major: str) -> tuple[str, ...]:
    try:
        return AL2023_NODE[major]
    except KeyError:
        raise ValueError(
            f"Node.js {major} is not packaged for Amazon Linux 2023 "
            f"(available: {', '.join(AL2023_NODE)})"
        ) from None
