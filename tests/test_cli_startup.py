"""`dcvpn` start-up is lazy: a command imports only its own module, yet every command is listed
in `dcvpn --help` and every `dcvpn CMD [SUB] --help` is the same as with every module loaded."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

from pipelines import cli

ACME = EXAMPLES / "acme-hybrid.yaml"
# Device transports, YANG and crypto stacks: a model-only command has no use for them.
DEVICE_STACK = ("ncclient", "asyncssh", "paramiko", "libyang", "netmiko", "nornir", "lxml",
                "cryptography", "jinja2")
COMMAND_MODULES = ("pipelines.deploy_cmd", "pipelines.lab_cmd", "pipelines.pki_cmd",
                   "pipelines.watch_cmd", "pipelines.diagnose_cmd", "pipelines.metrics_cmd",
                   "pipelines.onboard_cmd", "pipelines.validate_cmd", "pipelines.window_cmd",
                   "pipelines.diff_cmd", "pipelines.model_cmd", "pipelines.capacity_cmd")
PROBE = """\
import contextlib, io, json, sys
from pipelines.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "err": err.getvalue()[-2000:], "modules": sorted(sys.modules)}))
"""


def _modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after `dcvpn ARGV` (which must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCVPN_")}
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0, f"dcvpn {' '.join(argv)}: exit {result['code']}: {result['err']}"
    return set(result["modules"])


def _loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots or m in roots)


@pytest.mark.parametrize("command", ["lint", "topology"])
def test_model_commands_load_no_device_stack(command: str) -> None:
    modules = _modules_after(command, "-f", str(ACME))
    assert _loaded(modules, DEVICE_STACK) == []
    assert _loaded(modules, COMMAND_MODULES) == ["pipelines.model_cmd"]


def test_offline_diff_loads_no_device_transport(tmp_path: Path) -> None:
    from pipelines.cli import main  # rendering in-process is cheaper than another interpreter

    out = tmp_path / "out"
    assert main(["render", "-f", str(ACME), "-o", str(out)]) == 0
    modules = _modules_after("diff", "-f", str(ACME), "--offline", str(out))
    assert _loaded(modules, ("ncclient", "asyncssh", "paramiko", "libyang", "netmiko")) == []
    assert "tasks.deploy" not in modules  # the device path's driver stack


def test_top_level_help_loads_no_command_module() -> None:
    modules = _modules_after("--help")
    assert _loaded(modules, COMMAND_MODULES) == []
    assert "inventory" not in modules


def test_lazy_top_level_help_equals_the_full_one() -> None:
    """The table's names, order and help lines are the ones the command modules register."""
    assert cli.build_parser(()).format_help() == cli.build_parser().format_help()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _command_paths() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    paths = []
    todo = [((name,), p) for name, p in _subparsers(cli.build_parser()).items()]
    while todo:
        path, parser = todo.pop(0)
        paths.append((path, parser))
        todo.extend(((*path, name), p) for name, p in _subparsers(parser).items())
    return paths


PATHS = _command_paths()


def test_every_command_in_the_table_is_registered() -> None:
    top = sorted(path[0] for path, _ in PATHS if len(path) == 1)
    assert top == sorted(c.name for c in cli.COMMANDS)


@pytest.mark.parametrize(("path", "full"), PATHS, ids=[" ".join(p) for p, _ in PATHS])
def test_every_command_help_exits_0_as_with_every_module(
        path: tuple[str, ...], full: argparse.ArgumentParser,
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: dcvpn {' '.join(path)} ")
    assert out == full.format_help()


def test_only_the_invoked_command_is_registered() -> None:
    parser = cli.build_parser(("confirm",))
    full = {name for name, p in _subparsers(parser).items() if p.add_help}
    assert full == {"deploy", "confirm", "rollback"}  # deploy_cmd registers the three


@pytest.mark.parametrize(("argv", "command"), [
    (["lint", "-f", "x.yaml"], "lint"),
    (["diff", "--site", "lab"], "diff"),  # a later word naming a command is an argument
    (["lab", "up", "-f", "x.yaml"], "lab"),
    (["--help"], None),
    ([], None),
    (["bogus"], None),
])
def test_invoked_command(argv: list[str], command: str | None) -> None:
    assert cli.invoked(argv) == command


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "lint      check the model" in capsys.readouterr().err
