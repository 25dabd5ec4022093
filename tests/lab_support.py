"""Shared by the lab tests: run the lab/validate commands in-process, poll, find leftovers."""

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require_binary

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from lab import netns, procs
from lab.daemons import FRR_LIBEXEC
from lab.ready import poll
from lab.state import LabState
from pipelines import lab_cmd, validate_cmd
from tasks.validate_checks import CheckResult, Kind, Status
from tasks.validate_strongswan import local_fabric

PROGRAMS = ("ip", "charon-systemd", "swanctl", "vtysh", "zebra", "bgpd", "bfdd", "nft", "ping")


@contextmanager
def lab_machine() -> Iterator[Path]:
    """Root, every program the lab drives (FRR's daemons live off PATH on Debian), and a
    folder for lab dirs that FRR (user frr) can enter: pytest's own tmp is 0700."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, charon, FRR)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{os.environ.get('PATH', '')}:{FRR_LIBEXEC}")
        for program in PROGRAMS:
            require_binary(program)
        for name in list(os.environ):
            if name.startswith("DCVPN_"):
                mp.delenv(name)
        root = Path(tempfile.mkdtemp(prefix="dcvpn-lab-"))
        root.chmod(0o755)
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)


def cli(capsys: pytest.CaptureFixture[str] | None, main: Callable[[list[str]], int],
        *argv: str) -> tuple[int, str, str]:
    """Run a command in-process: (exit code, stdout, stderr)."""
    if capsys is not None:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
    else:  # module fixtures have no capsys
        out_buf, err_buf = io.StringIO(), io.StringIO()
        with redirect_stdout(out_buf), redirect_stderr(err_buf):
            code = main(list(argv))
        out, err = out_buf.getvalue(), err_buf.getvalue()
    assert "Traceback" not in out + err
    return code, out, err


def lab(capsys: pytest.CaptureFixture[str] | None, *argv: str) -> tuple[int, str, str]:
    return cli(capsys, lab_cmd.main, "lab", *argv)


@dataclass
class Lab:
    fabric: str
    lab_dir: Path
    up: dict[str, Any]

    def state(self) -> LabState:
        state = LabState.load(self.lab_dir)
        assert state is not None, f"no lab state in {self.lab_dir}"
        return state

    def record(self, gateway: str, daemon: str) -> procs.ProcessRecord:
        return next(r for r in self.state().processes
                    if r.gateway == gateway and r.daemon == daemon)

    def validate(self, capsys: pytest.CaptureFixture[str], *extra: str
                 ) -> tuple[int, dict[str, Any]]:
        code, out, _ = cli(capsys, validate_cmd.main, "validate", "-f", self.fabric,
                           "--lab-dir", str(self.lab_dir), "--format", "json", *extra)
        return code, json.loads(out)

    def checks(self, kinds: frozenset[Kind]) -> list[CheckResult]:
        """The state checks (no traffic), in-process and quick: for polling."""
        compiled = compile_fabric(local_fabric(load_fabric(self.fabric).fabric)[0])
        results = poll(compiled, self.lab_dir, self.state().gateways)
        return [r for r in results if r.kind in kinds]

    def wait(self, until: Callable[[list[CheckResult]], bool], kinds: frozenset[Kind],
             timeout: float = 20.0) -> list[CheckResult]:
        deadline = time.monotonic() + timeout
        while True:
            results = self.checks(kinds)
            if until(results) or time.monotonic() > deadline:
                return results
            time.sleep(0.25)


def start(capsys: pytest.CaptureFixture[str] | None, fabric: str, lab_dir: Path) -> Lab:
    code, out, err = lab(capsys, "up", "-f", fabric, "--lab-dir", str(lab_dir), "--format",
                         "json", "--timeout", "60")
    data = json.loads(out) if out else {}
    assert code == 0, err
    return Lab(fabric, lab_dir, data)


@dataclass(frozen=True)
class Footprint:
    """What a lab made, read from its state file before `down` (the file goes with it)."""

    namespaces: tuple[str, ...]
    processes: tuple[procs.ProcessRecord, ...]
    paths: tuple[Path, ...]


def footprint(lab_dir: Path) -> Footprint:
    state = LabState.load(lab_dir)
    assert state is not None
    return Footprint(tuple(state.namespaces), tuple(state.processes),
                     (lab_dir, *state.dirs, *state.files))


def leftovers(seen: Footprint) -> list[str]:
    out = [f"namespace {ns}" for ns in seen.namespaces if ns in netns.namespaces()]
    out += [f"process {r.daemon} {r.pid}" for r in seen.processes if procs.is_running(r)]
    out += [f"path {p}" for p in seen.paths if p.exists()]
    return out


def failed(results: list[CheckResult] | list[dict[str, Any]]) -> set[str]:
    names = set()
    for r in results:
        if isinstance(r, CheckResult):
            if r.status is Status.FAIL:
                names.add(r.name)
        elif r["status"] == "fail":
            names.add(r["name"])
    return names
