"""The local cloud: moto, OpenSSH, nginx, pebble, a Route53-backed DNS server, a log
shipper, a git host and a GitHub API stand-in, all on 127.0.0.1. The controller is
core.sandbox.controller; nothing is imported here, so no module of the sandbox drags the
others in."""
