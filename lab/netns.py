"""Network namespaces, veth pairs and addresses through iproute2 (thin wrappers)."""

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab.errors import LabError

IP = "ip"
NETNS_DIR = "/run/netns"


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    return [IP, "netns", "exec", ns, *argv]


def run(argv: Sequence[str], ns: str | None = None, check: bool = True,
        timeout: float = 30.0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = exec_argv(ns, argv) if ns else list(argv)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              input=stdin)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    except OSError as exc:
        raise LabError(f"cannot run {cmd[0]}: {exc}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {detail}")
    return proc


def namespaces() -> set[str]:
    proc = run([IP, "netns", "list"], check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def create(name: str) -> None:
    run([IP, "netns", "add", name])
    run([IP, "link", "set", "lo", "up"], ns=name)


def delete(name: str) -> bool:
    if name not in namespaces():
        return False
    run([IP, "netns", "delete", name])
    return True


def pids_in(name: str) -> list[int]:
    proc = run([IP, "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace."""
    run([IP, "link", "add", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b,
         "netns", ns_b])


def link_up(ns: str, dev: str, mtu: int | None = None) -> None:
    argv = [IP, "link", "set", dev, "up"]
    if mtu is not None:
        argv += ["mtu", str(mtu)]
    run(argv, ns=ns)


def add_address(ns: str, dev: str, cidr: str) -> None:
    run([IP, "addr", "replace", cidr, "dev", dev], ns=ns)


def add_route(ns: str, prefix: str, dev: str) -> None:
    run([IP, "route", "replace", prefix, "dev", dev], ns=ns)


def sysctl(ns: str, settings: Sequence[str]) -> None:
    """`sysctl -w key=value ...` inside `ns` (per-namespace network settings)."""
    run(["sysctl", "-qw", *settings], ns=ns)


def set_link(ns: str, dev: str, state: str) -> None:
    """`ip link set DEV up|down` inside `ns` (a lab uplink lost or restored)."""
    run([IP, "-n", ns, "link", "set", dev, state])


def batch(ns: str, commands: Sequence[str]) -> None:
    """Several `ip` commands (without the leading `ip`) in one process, inside `ns`."""
    if commands:
        run([IP, "-n", ns, "-batch", "-"], stdin="\n".join(commands) + "\n")


def inode(ns: str) -> int | None:
    """Identity of a named namespace (compare with netns_of)."""
    try:
        return os.stat(Path(NETNS_DIR) / ns).st_ino
    except OSError:
        return None


def netns_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None
