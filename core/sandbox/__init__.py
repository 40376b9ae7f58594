"""The local cloud: moto, OpenSSH, nginx, pebble, a Route53-backed DNS server, a log
shipper, a git host and a GitHub API stand-in, all on 127.0.0.1."""

from core.sandbox.controller import Sandbox, SandboxError, SandboxInfo

__all__ = ["Sandbox", "SandboxError", "SandboxInfo"]
