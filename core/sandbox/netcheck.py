"""Which addresses a set of processes listens on, read from /proc (no extra tools)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


@dataclass(frozen=True)
class Listener:
    pid: int
    protocol: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback


def descendants(pids: list[int]) -> list[int]:
    """`pids` and every process below them (nginx workers, sshd children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    result, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid in result:
            continue
        result.append(pid)
        todo.extend(parents.get(pid, []))
    return result


def listeners(pids: list[int]) -> list[Listener]:
    inodes: dict[str, int] = {}
    for pid in descendants(pids):
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            wanted = _TCP_LISTEN if protocol.startswith("tcp") else _UDP_UNCONNECTED
            if inode in inodes and state == wanted:
                address, port = _decode(local, v6=protocol.endswith("6"))
                found.append(Listener(inodes[inode], protocol, address, port))
    return found


def _decode(local: str, *, v6: bool) -> tuple[str, int]:
    hex_addr, hex_port = local.split(":")
    raw = bytes.fromhex(hex_addr)
    # /proc prints each 32-bit word in host (little-endian) order.
    fixed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(fixed) if v6 else ipaddress.ip_address(raw[::-1])
    return str(address), int(hex_port, 16)
