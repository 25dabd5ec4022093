"""Observed state of a strongSwan+FRR gateway running on this machine (the lab), thin I/O.

Where a local gateway lives (shared with the lab, which creates it): network namespace
`dcvpn-<gateway>`, folder `<lab dir>/<gateway>` with charon's vici socket and log (names from
the rendered strongswan.conf) and `frr/` holding FRR's vty sockets. The lab dir is
`$DCVPN_LAB_DIR`, or /run/dcvpn-lab/<fabric>. Sockets are files, so only ping has to enter
the namespace; routes are read with `ip -n`.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from vici import Session  # type: ignore[import-untyped]
from vici.exception import (  # type: ignore[import-untyped]
    CommandException,
    DeserializationException,
    SessionException,
)

from inventory.model import DataPlane, Fabric, Platform
from tasks.render_strongswan import CHARON_LOG, VICI_SOCKET
from tasks.validate_observed import BgpPeer, ChildSa, IkeSa, PingResult, ReadError, Route

LAB_ROOT = Path("/run/dcvpn-lab")
LAB_DIR_ENV = "DCVPN_LAB_DIR"
NAMESPACE_PREFIX = "dcvpn-"
FRR_DIR = "frr"
IP = "ip"
PING = "ping"
VTYSH = "vtysh"
ICMP_OVERHEAD = 28  # IPv4 20 + ICMP 8: ping's -s is the payload
LOG_TAIL = 1 << 20

# charon log lines (filelog with ike_name): "<conn|id> message". A cause (proposal, auth,
# selectors) is worth more than its consequence ("failed to establish CHILD_SA").
_LOG_LINE = re.compile(r"<(?P<conn>[^|>\s]+)\|\d+> (?P<msg>.*)$")
_LOG_CAUSES = re.compile(
    r"no acceptable proposal found|received \w+ notify|authentication of .* failed"
    r"|constraint check failed|no trusted .* public key found|no matching peer config"
    r"|unable to install (?:inbound|outbound) IPsec SA|unable to install policy")
_LOG_EFFECTS = re.compile(
    r"failed to establish CHILD_SA|giving up after \d+ retransmits|peer not responding"
    r"|establishing IKE_SA failed")
_LOG_OK = re.compile(r"(?:IKE_SA|CHILD_SA) \S+ established")


def default_lab_dir(fabric_name: str) -> Path:
    value = os.environ.get(LAB_DIR_ENV, "")
    return Path(value) if value else LAB_ROOT / fabric_name


def namespace(gateway: str) -> str:
    return f"{NAMESPACE_PREFIX}{gateway}"


def local_fabric(fabric: Fabric) -> tuple[Fabric, tuple[str, ...]]:
    """The fabric as this machine runs it: every site with a strongSwan gateway on the
    kernel-libipsec data plane (no kernel ESP here). Also the sites that were changed."""
    changed = tuple(s.name for s in fabric.sites
                    if fabric.data_plane(s) is not DataPlane.LIBIPSEC
                    and any(g.platform is Platform.STRONGSWAN for g in s.gateways))
    if not changed:
        return fabric, ()
    sites = tuple(s.model_copy(update={"data_plane": DataPlane.LIBIPSEC})
                  if s.name in changed else s for s in fabric.sites)
    return fabric.model_copy(update={"sites": sites}), changed


@dataclass(frozen=True, slots=True)
class LocalGateway:
    name: str
    namespace: str
    folder: Path

    @classmethod
    def in_lab(cls, lab_dir: Path, gateway: str) -> "LocalGateway":
        return cls(gateway, namespace(gateway), lab_dir / gateway)

    @property
    def vici_socket(self) -> Path:
        return self.folder / VICI_SOCKET

    @property
    def vty_dir(self) -> Path:
        return self.folder / FRR_DIR

    @property
    def charon_log(self) -> Path:
        return self.folder / CHARON_LOG


def _text(value: Any) -> Any:
    """vici answers in bytes; turn every leaf into str (lists and sections recursively)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, Mapping):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_sas(entries: Sequence[Mapping[str, Any]]) -> tuple[IkeSa, ...]:
    """vici `list-sas` events (each {conn name: {...}}) as IkeSa values."""
    out = []
    for entry in entries:
        for name, sa in entry.items():
            children = tuple(
                ChildSa(str(c.get("name", "")), str(c.get("state", "")),
                        str(c.get("encr-alg", "")), _int(c.get("encr-keysize")),
                        c.get("integ-alg"), c.get("dh-group"),
                        tuple(c.get("local-ts", ())), tuple(c.get("remote-ts", ())))
                for c in (sa.get("child-sas") or {}).values())
            out.append(IkeSa(str(name), str(sa.get("state", "")), str(sa.get("remote-host", "")),
                             str(sa.get("remote-id", "")), sa.get("encr-alg"),
                             _int(sa.get("encr-keysize")), sa.get("integ-alg"),
                             sa.get("prf-alg"), sa.get("dh-group"), children))
    return tuple(sorted(out, key=lambda s: s.name))


def parse_bgp_summary(data: Mapping[str, Any]) -> tuple[BgpPeer, ...]:
    """`show bgp summary json` (FRR): the IPv4 unicast peers."""
    peers = (data.get("ipv4Unicast") or {}).get("peers") or {}
    return tuple(sorted((BgpPeer(IPv4Address(addr), int(p.get("remoteAs", 0)),
                                 str(p.get("state", "")), _int(p.get("pfxRcd")))
                         for addr, p in peers.items()), key=lambda p: p.address))


def parse_routes(data: Sequence[Mapping[str, Any]]) -> tuple[Route, ...]:
    """`ip -j route show` as Route values (IPv4 unicast only)."""
    out = []
    for r in data:
        dst = str(r.get("dst", ""))
        if r.get("type", "unicast") != "unicast":
            continue
        prefix = IPv4Network("0.0.0.0/0" if dst == "default" else dst, strict=False)
        gateway = r.get("gateway")
        out.append(Route(prefix, str(r.get("protocol", "kernel")), r.get("dev"),
                         IPv4Address(gateway) if gateway else None))
    return tuple(out)


def parse_negotiation_errors(log: str) -> dict[str, str]:
    """Connection -> the last negotiation error logged since it last came up (a cause
    rather than its consequence when both were logged)."""
    causes: dict[str, str] = {}
    effects: dict[str, str] = {}
    for line in log.splitlines():
        match = _LOG_LINE.search(line)
        if match is None:
            continue
        conn, msg = match.group("conn"), match.group("msg").strip()
        if _LOG_OK.search(msg):
            causes.pop(conn, None)
            effects.pop(conn, None)
        elif _LOG_CAUSES.search(msg):
            causes[conn] = msg
        elif _LOG_EFFECTS.search(msg):
            effects[conn] = msg
    return {**effects, **causes}


class StrongswanReader:
    """DeviceReader for a local strongSwan+FRR gateway (vici, vtysh, ip, ping)."""

    def __init__(self, gateway: LocalGateway, timeout: float = 5.0) -> None:
        self.gateway = gateway
        self.timeout = timeout

    def _run(self, argv: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(argv), capture_output=True, text=True, check=False,
                                  timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReadError(f"{what}: {exc}") from exc

    def ike_sas(self) -> tuple[IkeSa, ...]:
        path = self.gateway.vici_socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(path))
            entries = [_text(e) for e in Session(sock).list_sas()]
        except OSError as exc:
            raise ReadError(f"charon (vici {path}): {exc.strerror or exc}") from exc
        except (SessionException, CommandException, DeserializationException) as exc:
            raise ReadError(f"charon (vici {path}): {exc}") from exc
        finally:
            sock.close()
        return parse_sas(entries)

    def bgp_peers(self) -> tuple[BgpPeer, ...]:
        vty = self.gateway.vty_dir
        proc = self._run([VTYSH, "--vty_socket", str(vty), "-c", "show bgp summary json"],
                         "vtysh")
        try:
            data = json.loads(proc.stdout) if proc.returncode == 0 else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise ReadError(f"bgpd (vtysh {vty}): {detail[-1] if detail else 'no answer'}")
        return parse_bgp_summary(data)

    def routes(self) -> tuple[Route, ...]:
        proc = self._run([IP, "-n", self.gateway.namespace, "-j", "-4", "route", "show",
                          "table", "main"], "ip route")
        if proc.returncode != 0:
            raise ReadError(f"routes of {self.gateway.namespace}: {proc.stderr.strip()}")
        try:
            return parse_routes(json.loads(proc.stdout or "[]"))
        except (json.JSONDecodeError, ValueError) as exc:
            raise ReadError(f"routes of {self.gateway.namespace}: {exc}") from exc

    def ping(self, source: IPv4Address, target: IPv4Address, size: int | None = None,
             dont_fragment: bool = False) -> PingResult:
        argv = [IP, "netns", "exec", self.gateway.namespace, PING, "-n", "-c", "3",
                "-i", "0.01", "-W", "1", "-I", str(source)]
        if dont_fragment:
            argv += ["-M", "do"]
        if size is not None:
            argv += ["-s", str(size - ICMP_OVERHEAD)]
        try:
            proc = self._run([*argv, str(target)], "ping")
        except ReadError as exc:
            return PingResult(False, str(exc))
        lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        summary = next((ln for ln in lines if "packets transmitted" in ln), "")
        error = next((ln for ln in lines if "error:" in ln.lower()), "")
        detail = "; ".join(x for x in (summary, error) if x) or (lines[-1] if lines else "")
        return PingResult(proc.returncode == 0, detail)

    def negotiation_errors(self) -> dict[str, str]:
        path = self.gateway.charon_log
        try:
            with path.open("rb") as fh:
                with contextlib.suppress(OSError):
                    fh.seek(-LOG_TAIL, os.SEEK_END)
                text = fh.read().decode(errors="replace")
        except OSError:
            return {}
        return parse_negotiation_errors(text)
