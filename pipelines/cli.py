"""The `dcvpn` command line. Results go to stdout in the chosen format; messages to stderr.

Every option can also come from an environment variable named DCVPN_<OPTION> (e.g.
DCVPN_FABRIC, DCVPN_FORMAT); a command-line value wins.

Start-up is lazy: COMMANDS names every top-level command with its one-line help and the
function that adds its parser. `dcvpn --help` lists the table without importing any command
module; `dcvpn CMD ...` imports CMD's module only, so a command loads just what it uses
(`dcvpn lint` no Nornir, ncclient, asyncssh, paramiko, libyang or cryptography). A new
command needs its row in COMMANDS: tests/test_cli_startup.py fails while one is missing.
"""

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from pipelines.exit_codes import Exit
from pipelines.usage import UsageError

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@dataclass(frozen=True)
class Command:
    """A top-level command. `register` ("module:function") adds its parser, and those of the
    other commands naming the same function (deploy adds confirm and rollback). `help` is what
    `dcvpn --help` lists; it must equal the help the module gives (tests/test_cli_startup.py)."""

    name: str
    register: str
    help: str


_DEPLOY = "pipelines.deploy_cmd:register"

# In `dcvpn --help` order.
COMMANDS: tuple[Command, ...] = (
    Command("lint", "pipelines.model_cmd:register_lint", "check the model: schema and policy"),
    Command("topology", "pipelines.model_cmd:register_topology",
            "show compiled tunnels and BGP sessions"),
    Command("capacity", "pipelines.capacity_cmd:register",
            "SAs, BGP sessions and rekeys per hub and fabric, against fabric.limits"),
    Command("render", "pipelines.model_cmd:register_render",
            "render every gateway's configuration files"),
    Command("diff", "pipelines.model_cmd:register_diff",
            "dry run: what a deploy would change, per gateway"),
    Command("pki", "pipelines.pki_cmd:register",
            "fabric CA, gateway certificates, CRL, expiry monitoring, PSKs"),
    Command("lab", "pipelines.lab_cmd:register",
            "staging lab: real strongSwan + FRR gateways in network namespaces, emulated "
            "IOS-XE / JunOS devices"),
    Command("deploy", _DEPLOY,
            "commit-confirm the model to the devices, wave by wave, health-gated"),
    Command("confirm", _DEPLOY, "confirm the commits a --no-auto-confirm deploy left pending"),
    Command("rollback", _DEPLOY,
            "roll back the commits a --no-auto-confirm deploy left pending"),
    Command("validate", "pipelines.validate_cmd:register",
            "post-change checks: tunnels, proposals, BGP, routes, ping, MTU"),
    Command("diagnose", "pipelines.diagnose_cmd:register",
            "why is a tunnel down: likely cause first, then evidence per end"),
    Command("metrics", "pipelines.metrics_cmd:register",
            "Prometheus metrics of tunnels, BGP, daemons and certificates"),
    Command("onboard", "pipelines.onboard_cmd:register",
            "add a site to the model, issue its identity, render, diff, deploy"),
    Command("window", "pipelines.window_cmd:register", "change-window guard for deploys"),
    Command("watch", "pipelines.watch_cmd:register",
            "probe the lab's gateways in cycles, alert on changes, heal within limits"),
)
_BY_NAME = {c.name: c for c in COMMANDS}


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _register(target: str, sub: SubParsers) -> None:
    module, _, function = target.partition(":")
    getattr(importlib.import_module(module), function)(sub)


def build_parser(only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The dcvpn parser. Every command is fully registered (its module imported) when `only`
    is None, else just the named ones; the others are listed by name and help, not parsable."""
    parser = argparse.ArgumentParser(
        prog="dcvpn",
        description="IKEv2/IPsec + BGP data-center interconnect as code: one fabric model, "
                    "compiled to strongSwan+FRR, IOS-XE and JunOS configuration.",
        epilog="exit codes: 0 ok, 1 checks failed / changes refused, 2 bad input or usage, "
               "3 device or transport failure. Every option also reads DCVPN_<OPTION>.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = {c.register for c in COMMANDS if only is None or c.name in only}
    registered: set[str] = set()
    for command in COMMANDS:
        if command.register not in wanted:
            sub.add_parser(command.name, help=command.help, add_help=False)
        elif command.register not in registered:
            registered.add(command.register)
            _register(command.register, sub)
    return parser


def invoked(argv: Sequence[str]) -> str | None:
    """The command argv runs: the first word naming one (the top level has no option taking a
    value, so nothing before it can be an argument)."""
    return next((word for word in argv if word in _BY_NAME), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = invoked(words)
    parser = build_parser(() if command is None else (command,))
    args = parser.parse_args(words)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    choices = getattr(args, "format_choices", None)
    if choices is not None and args.format not in choices:
        _err(f"dcvpn {args.command}: --format must be one of {', '.join(choices)}, "
             f"not {args.format!r}")
        return Exit.BAD_INPUT
    # every command loads the model's package anyway; `dcvpn --help` need not
    from inventory.errors import FabricLoadError, TopologyError  # noqa: PLC0415

    try:
        return handler(args)
    except UsageError as exc:
        _err(f"dcvpn {args.command}: {exc}")
        return Exit.BAD_INPUT
    except FabricLoadError as exc:
        for line in exc.lines:
            _err(line)
        if getattr(args, "format", None) == "json":
            print(json.dumps({"ok": False, "errors": exc.lines}, indent=2))
        return Exit.BAD_INPUT
    except TopologyError as exc:
        _err(f"dcvpn {args.command}: {exc}")
        return Exit.BAD_INPUT
    except BrokenPipeError:
        return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
