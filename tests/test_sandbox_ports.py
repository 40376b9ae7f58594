"""Each sandbox keeps a block of ports for its node apps alone, so an app left running by
another sandbox on this machine (a killed run, a second checkout) never answers for ours."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
from pathlib import Path

from core.host.profiles import ec2_host_profile
from core.sandbox.layout import (
    APP_BLOCK,
    APP_BLOCK_CLAIMS,
    APP_BLOCKS_FROM,
    APP_BLOCKS_TO,
    PORT_NAMES,
    Layout,
    app_block_start,
)


def _block(ports_apps: int) -> range:
    return range(ports_apps, ports_apps + APP_BLOCK)


def test_two_sandboxes_get_disjoint_app_blocks_below_the_ephemeral_range(tmp_path: Path) -> None:
    first = Layout(tmp_path / "one").allocate_ports()
    second = Layout(tmp_path / "two").allocate_ports()
    assert not set(_block(first.apps)) & set(_block(second.apps))
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for ports in (first, second):
        assert _block(ports.apps)[-1] < ephemeral_low
        services = {getattr(ports, name) for name in PORT_NAMES}
        assert not services & set(_block(ports.apps))


def test_the_block_is_remembered_even_while_its_apps_hold_its_ports(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "sb")
    ports = layout.allocate_ports()
    with socket.create_server(("127.0.0.1", ports.apps)):  # our own app, still serving
        again = Layout(tmp_path / "sb").allocate_ports()
    assert again.apps == ports.apps


def test_a_block_with_a_port_in_use_is_passed_over(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    wanted = Layout(root).allocate_ports().apps
    (root / "ports.json").unlink()
    # Someone else's server inside the block this sandbox would choose first.
    with socket.create_server(("127.0.0.1", wanted + 57)):
        chosen = Layout(root).allocate_ports().apps
    assert chosen != wanted
    assert wanted + 57 not in _block(chosen)


def test_a_sandbox_from_before_app_blocks_keeps_its_ports_and_gains_a_block(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "sb")
    ports = layout.allocate_ports()
    old = {name: getattr(ports, name) for name in PORT_NAMES}
    layout.ports_file.write_text(json.dumps(old))
    loaded = layout.load_ports()
    assert loaded is not None
    assert {name: getattr(loaded, name) for name in PORT_NAMES} == old
    assert json.loads(layout.ports_file.read_text())["apps"] == loaded.apps
    assert layout.load_ports() == loaded


def test_app_ports_on_ec2_and_on_a_shared_host() -> None:
    ec2 = ec2_host_profile()
    assert ec2.app_port(3000, 7) == 3000  # the instance is the app's own
    shared = dataclasses.replace(ec2, app_port_block=20_000, app_port_slots=100)
    firsts = [shared.app_port(3000, deployment_id) for deployment_id in range(1, 101)]
    # Two ports (blue and green) each, all inside the block, none shared.
    used = {port for first in firsts for port in (first, first + 1)}
    assert len(used) == 200
    assert min(used) >= 20_000 and max(used) < 20_200


def _root_trying_first_the_block_of(root: Path, parent: Path) -> Path:
    count = (APP_BLOCKS_TO - APP_BLOCKS_FROM) // APP_BLOCK
    wanted = app_block_start(root.resolve(), count)
    return next(
        candidate
        for candidate in (parent / f"other-{n}" for n in range(100_000))
        if app_block_start(candidate.resolve(), count) == wanted
    )


def test_a_block_claimed_by_another_sandbox_is_not_shared_even_with_no_app_running(
    tmp_path: Path,
) -> None:
    first = Layout(tmp_path / "first").allocate_ports()
    rival_root = _root_trying_first_the_block_of(tmp_path / "first", tmp_path)
    rival = Layout(rival_root).allocate_ports()
    assert rival.apps != first.apps
    assert not set(_block(first.apps)) & set(_block(rival.apps))


def test_the_block_of_a_removed_sandbox_is_free_again(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    block = Layout(gone).allocate_ports().apps
    shutil.rmtree(gone)  # what `toast sandbox reset` leaves
    heir_root = _root_trying_first_the_block_of(gone, tmp_path)
    assert Layout(heir_root).allocate_ports().apps == block
    assert (APP_BLOCK_CLAIMS / str(block)).read_text() == str(heir_root.resolve())
