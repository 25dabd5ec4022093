"""The lab's emulator supervisor: one process that hosts every emulated gateway of a lab.

`dcvpn lab up` writes `<lab dir>/emulators/spec.json` and starts
`python -m lab.emulators.supervisor --lab-dir DIR` (files: supervisor_files). The supervisor
writes its PID file, hosts one emulator per gateway on its own 127.0.0.1 port in one event
loop (one PeerRegistry for the lab, so each device sees its peers' configuration; one YANG
load per release), and once all listen writes `ready.json`: each gateway's port and the
known_hosts line of its host key (kept in `emulators/<gateway>/`). SIGHUP (`dcvpn lab up
--add`) re-reads the spec and starts the gateways it does not host yet, in the same loop and
registry, then writes `ready.json` again with all of them; the running ones are not touched.
It runs until SIGTERM or SIGINT (exit 0); a failure to start is one line on stderr (the lab's
supervisor.log) and exit 1.
"""

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lab.emulators.errors import EmulatorError
from lab.emulators.hosting import EmulatorSpec, Server, host_until_signalled
from lab.emulators.peers import PeerRegistry
from lab.emulators.ssh_server import known_hosts_line
from lab.emulators.supervisor_files import (
    PID_FILE,
    SPEC_FILE,
    Listening,
    folder_of,
    read_spec_data,
    write_ready,
)
from lab.errors import LabError


def read_spec(lab_dir: Path) -> list[EmulatorSpec]:
    data = read_spec_data(lab_dir)
    try:
        return [EmulatorSpec(
            platform=str(e["platform"]), transport=str(e["transport"]),
            username=str(data["username"]), password=str(data["password"]),
            state_dir=folder_of(lab_dir) / str(e["gateway"]),
            time_scale=float(data["time_scale"]), hostname=str(e["gateway"]),
            os_version=e.get("os_version"), gateway=str(e["gateway"]))
            for e in data["emulators"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EmulatorError(f"{folder_of(lab_dir) / SPEC_FILE}: malformed ({exc})") from None


def _ready(lab_dir: Path, started: Sequence[tuple[EmulatorSpec, Server]]) -> None:
    listening = []
    for spec, server in started:
        if server.host_key is None or spec.gateway is None:
            raise EmulatorError(f"{spec.label}: not started")
        line = known_hosts_line(server.host_key, server.host, server.port).strip()
        listening.append(Listening(spec.gateway, server.host, server.port, line))
    write_ready(lab_dir, listening)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.emulators.supervisor",
                                     description="Host a dcvpn lab's emulated gateways.")
    parser.add_argument("--lab-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # a line per connection else
    lab_dir: Path = args.lab_dir
    try:
        (folder_of(lab_dir) / PID_FILE).write_text(f"{os.getpid()}\n")
        specs = read_spec(lab_dir)
        host_until_signalled(specs, lambda started: _ready(lab_dir, started), PeerRegistry(),
                             reload=lambda: read_spec(lab_dir))
    except (LabError, OSError) as exc:
        print(f"emulator supervisor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
