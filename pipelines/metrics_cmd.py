"""`dcvpn metrics -f FABRIC`: the fabric's runtime state in Prometheus text format.

Per gateway of the lab: tunnel up/down (dcvpn_tunnel_up{tunnel,gateway,peer,plane}), IKE and
CHILD SA rekeys, CHILD SA bytes and packets, BGP session state, prefixes received and flaps,
daemon liveness, CPU and memory; with a PKI directory (--pki-dir, else the lab's own) also
certificate expiry and revocation (dcvpn_cert_expiry_seconds, as `dcvpn pki status
--prometheus`). Each metric has HELP and TYPE lines.

Output: stdout; --output FILE replaces FILE atomically (for node_exporter's textfile
collector); --listen HOST:PORT serves GET /metrics over HTTP, reading the gateways at every
scrape, on loopback unless --allow-remote, for --duration seconds or until SIGTERM/SIGINT.
Exit 0 written/served, 2 bad input or not root, 3 no gateway of the fabric is running.
Gateways that cannot be read are reported on stderr and as 0 in the metrics.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import FrameType

from inventory.errors import FabricLoadError, TopologyError
from inventory.model import Platform
from inventory.topology import CompiledFabric
from pipelines.diagnose_cmd import compile_local
from pipelines.exit_codes import Exit
from tasks.errors import TaskError
from tasks.metrics import Scrape, collect
from tasks.metrics_format import CONTENT_TYPE
from tasks.pki.status import write_prometheus
from tasks.validate_strongswan import LocalGateway, default_lab_dir

Handler = Callable[[argparse.Namespace], int]
Collect = Callable[[], Scrape]
NETNS_DIR = Path("/run/netns")
DEFAULT_LISTEN = "127.0.0.1:9477"
POLL = 0.5  # the server loop checks its deadline and the stop signal this often
PATH = "/metrics"


class _UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "metrics", help="Prometheus metrics of tunnels, BGP, daemons and certificates",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--fabric", default=_env("fabric"), metavar="FABRIC",
                   help="fabric model YAML file [env DCVPN_FABRIC]")
    p.add_argument("--lab-dir", default=_env("lab_dir"), metavar="DIR",
                   help="the lab's directory (default /run/dcvpn-lab/<fabric>) "
                        "[env DCVPN_LAB_DIR]")
    p.add_argument("--pki-dir", default=_env("pki_dir"), metavar="DIR",
                   help="PKI directory for certificate metrics (default: the lab's own) "
                        "[env DCVPN_PKI_DIR]")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", default=_env("output"), metavar="FILE",
                     help="write here, replaced atomically [env DCVPN_OUTPUT]")
    out.add_argument("--listen", nargs="?", const=DEFAULT_LISTEN, default=_env("listen"),
                     metavar="HOST:PORT",
                     help=f"serve {PATH} over HTTP (default {DEFAULT_LISTEN}) "
                          "[env DCVPN_LISTEN]")
    p.add_argument("--allow-remote", action="store_true",
                   default=_env("allow_remote") in ("1", "true", "yes"),
                   help="allow --listen on a non-loopback address [env DCVPN_ALLOW_REMOTE]")
    p.add_argument("--duration", type=float, default=float(_env("duration", "0") or 0),
                   metavar="SECONDS",
                   help="with --listen: stop after this long (default 0: until SIGTERM) "
                        "[env DCVPN_DURATION]")
    p.set_defaults(handler=cmd_metrics)


def parse_listen(value: str, allow_remote: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise _UsageError(f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}), not {value!r}")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _UsageError(f"--listen needs an IP address, not {host!r}") from None
    if not address.is_loopback and not allow_remote:
        raise _UsageError(f"--listen {value}: {host} is not a loopback address; metrics "
                          "reveal the fabric's state: add --allow-remote to serve them there")
    return str(address), int(port_text)


def _handler(scrape: Collect) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != PATH:
                body, status, kind = b"not found: try /metrics\n", 404, "text/plain"
            else:
                result = scrape()
                for problem in result.problems:
                    _err(f"dcvpn metrics: {problem}")
                body, status, kind = result.text.encode(), 200, CONTENT_TYPE
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: one line per scrape is noise

    return MetricsHandler


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def serve(host: str, port: int, scrape: Collect, duration: float,
          stop: threading.Event | None = None,
          ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until `duration` seconds passed (0: no limit) or `stop` is set."""
    stop = stop or threading.Event()
    server = HTTPServer((host, port), _handler(scrape))
    server.timeout = POLL
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        bound_port = int(server.server_address[1])
        _err(f"dcvpn metrics: serving http://{host}:{bound_port}{PATH}")
        if ready is not None:
            ready(host, bound_port)
        with _stop_on_signals(stop):
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                server.handle_request()
    finally:
        server.server_close()


def cmd_metrics(args: argparse.Namespace) -> int:
    try:
        return _metrics(args)
    except FabricLoadError as exc:
        lines, code = exc.lines, Exit.BAD_INPUT
    except (_UsageError, TopologyError) as exc:
        lines, code = [f"dcvpn metrics: {exc}"], Exit.BAD_INPUT
    except (TaskError, OSError) as exc:
        lines, code = [f"dcvpn metrics: {exc}"], Exit.DEVICE
    for line in lines:
        _err(line)
    return code


def _scraper(compiled: CompiledFabric, args: argparse.Namespace) -> Collect:
    name = compiled.fabric.fabric.name
    lab_dir = Path(args.lab_dir) if args.lab_dir else default_lab_dir(name)
    gateways = [gw.name for _, gw in compiled.gateways() if gw.platform is Platform.STRONGSWAN]
    running = [g for g in gateways
               if (NETNS_DIR / LocalGateway.in_lab(lab_dir, g).namespace).exists()]
    if not running:
        raise TaskError(f"no gateway of fabric {name} is running in {lab_dir}; start the lab "
                        f"with dcvpn lab up -f {args.fabric}, or give its --lab-dir")
    pki_dir = Path(args.pki_dir) if args.pki_dir else None
    return lambda: collect(compiled, lab_dir, gateways, pki_dir, datetime.now(UTC))


def _metrics(args: argparse.Namespace) -> int:
    listen = parse_listen(args.listen, args.allow_remote) if args.listen else None
    if args.duration < 0:
        raise _UsageError(f"--duration must be 0 or more seconds, not {args.duration}")
    compiled = compile_local(args.fabric)
    if not is_root():
        raise _UsageError("reading the lab's gateways needs root (vici and vtysh sockets); "
                          "run it as root, e.g. with sudo")
    scrape = _scraper(compiled, args)
    if listen is not None:
        serve(listen[0], listen[1], scrape, args.duration)
        return Exit.OK
    result = scrape()
    for problem in result.problems:
        _err(f"dcvpn metrics: {problem}")
    if args.output:
        write_prometheus(Path(args.output), result.text)
        _err(f"dcvpn metrics: wrote {args.output}")
    else:
        sys.stdout.write(result.text)
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.metrics_cmd metrics ...` (tests, and before wiring)."""
    parser = argparse.ArgumentParser(prog="dcvpn")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
