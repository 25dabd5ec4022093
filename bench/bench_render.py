"""Benchmark: render every gateway of a generated 1,000-site fabric, and dcvpn vs Ansible.

    python bench/bench_render.py                   # both parts (the README table)
    python bench/bench_render.py --skip-ansible    # only the dcvpn figures
    python bench/bench_render.py --profile render  # cProfile of one phase of the full run
    python bench/bench_render.py --json            # results as JSON on stdout

Part 1 (issue 3): a hub_spoke fabric of 1,000 sites with mixed platforms (strongswan, iosxe,
junos round-robin) is loaded, linted, compiled, and every gateway is rendered with
tasks.render.render_gateway (the one shared Jinja2 environment, templates compiled once) and
written to a temp dir, in a fresh interpreter whose peak RSS (getrusage ru_maxrss) is its
own. Target: the whole process (interpreter start to exit) under 10 s wall on the 2-core
reference machine and under 1 GB peak RSS.

Part 2: the first 100 gateways of the same fabric (the 4 hub gateways and 96 spokes, all
three platforms) rendered by Ansible's `template` module from the same template files with
the same per-host variables. The variables are captured from the renderers themselves: a
recording wrapper around the shared environment's get_template keeps the arguments of each
Template.render call, converted to plain JSON (dataclasses -> dicts with their properties,
IPv4 objects -> str, tuples -> lists) into host_vars/<gateway>.json. ansible-core is installed
on demand into bench/.venv-ansible (never a project dependency). The Ansible output is compared
byte for byte with dcvpn's, which proves both did the same work; expected: dcvpn at least
100x faster. Exit 1 when a target is missed or the outputs differ.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from functools import partial
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, TypeAlias

import jinja2
from gen_fabric import fabric_yaml, generate
from pydantic import BaseModel

from inventory.lint import lint
from inventory.loader import load_fabric
from inventory.topology import CompiledFabric, compile_fabric
from tasks.render import TEMPLATES_DIR, environment, render_gateway, write_files

SITES = 1000
TOPOLOGY = "hub_spoke"
SUBSET = 100  # gateways rendered by both dcvpn and Ansible
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 1024.0
TARGET_RATIO = 100.0
PHASES = ("load", "lint", "compile", "render", "write")

ANSIBLE_CORE = "ansible-core==2.19.14"  # the newest ansible-core that runs on Python 3.11
ANSIBLE_VENV = Path(__file__).resolve().parent / ".venv-ansible"
ANSIBLE_FORKS = 2  # default of --forks: one per core of the reference machine
CHILD_TIMEOUT = 300
PIP_TIMEOUT = 900
PLAYBOOK_TIMEOUT = 3600

Plain: TypeAlias = "bool | int | float | str | list[Plain] | dict[str, Plain] | None"


@dataclass(frozen=True)
class Recorded:
    template: str  # loader name, e.g. "iosxe/config.xml.j2"
    context: dict[str, Any]  # what Template.render got (positional dict merged with kwargs)
    output: str


# ---------------------------------------------------------------------------- child side


def _measure(fabric: Path, out: Path, limit: int | None, profile: str | None) -> dict[str, Any]:
    """Time each phase of one run; render and write alternate per gateway and are summed."""
    profiler = cProfile.Profile()
    times: dict[str, float] = dict.fromkeys(PHASES, 0.0)
    by_platform: dict[str, float] = defaultdict(float)

    def run(phase: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        if phase == profile:
            profiler.enable()
        value = fn()
        if phase == profile:
            profiler.disable()
        times[phase] += time.perf_counter() - start
        return value

    loaded = run("load", lambda: load_fabric(fabric))
    findings = run("lint", lambda: lint(loaded))
    compiled: CompiledFabric = run("compile", lambda: compile_fabric(loaded.fabric))
    gateways = [(str(gw.platform), gw.name) for _, gw in compiled.gateways()][:limit]
    files = size = 0
    for platform, name in gateways:
        before = times["render"]
        rendered: dict[str, str] = run("render", partial(render_gateway, compiled, name))
        by_platform[platform] += times["render"] - before
        run("write", partial(write_files, out, name, rendered))
        files += len(rendered)
        size += sum(len(text.encode()) for text in rendered.values())
    result: dict[str, Any] = {
        "gateways": len(gateways), "files": files, "bytes": size,
        "tunnels": len(compiled.tunnels), "findings": sorted({f.code for f in findings}),
        "times": times, "render_by_platform": dict(sorted(by_platform.items())),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": _cpu(resource.RUSAGE_SELF),
    }
    if profile:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        result["profile"] = text.getvalue()
    return result


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _run_child(fabric: Path, out: Path, limit: int | None, profile: str | None
               ) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(fabric), "--out", str(out)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if profile:
        cmd += ["--profile", profile]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env,
                          timeout=CHILD_TIMEOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["process_s"] = wall
    return result


def _fresh(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    return out


def _best_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fastest of `runs` fresh runs (other load on the machine only ever slows a run down);
    peak RSS is the largest seen."""
    results = []
    for _ in range(max(runs, 1)):
        load = os.getloadavg()[0]
        results.append({**measure(), "loadavg": load})
    best = min(results, key=lambda r: float(r["process_s"]))
    return {**best, "runs": len(results), "maxrss_mb": max(r["maxrss_mb"] for r in results),
            "process_s_all": [r["process_s"] for r in results]}


# ------------------------------------------------------- per-host variables for Ansible


def plain(value: object) -> Plain:
    """JSON data a template sees the same way as the Python object the renderer passed."""
    if isinstance(value, Enum):
        return plain(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, IPv4Address | IPv4Network | IPv4Interface):
        return str(value)
    if isinstance(value, BaseModel) or (is_dataclass(value) and not isinstance(value, type)):
        return _mapping({name: getattr(value, name) for name in _attributes(value)})
    if isinstance(value, Mapping):
        return _mapping(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__} in template variables")


def _attributes(value: object) -> list[str]:
    """Fields, then properties (templates read both the same way)."""
    names: list[str] = []
    if isinstance(value, BaseModel):
        names = list(type(value).model_fields)
    elif is_dataclass(value):
        names = [f.name for f in fields(value)]
    own = [c for c in type(value).__mro__ if not c.__module__.startswith(("pydantic", "builtins"))]
    return names + sorted({name for c in own for name, attr in vars(c).items()
                           if isinstance(attr, property) and name not in names})


def _mapping(value: Mapping[Any, Any]) -> dict[str, Plain]:
    out: dict[str, Plain] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"template variable key {key!r} is not a string")
        if hasattr(dict, key):  # `x.items` would find the dict method, not the value
            raise TypeError(f"template variable {key!r} shadows a dict attribute")
        out[key] = plain(item)
    return out


class _RecordingTemplate:
    def __init__(self, template: jinja2.Template, log: list[Recorded]) -> None:
        self._template = template
        self._log = log

    def render(self, *args: Any, **kwargs: Any) -> str:
        output = self._template.render(*args, **kwargs)
        self._log.append(Recorded(str(self._template.name), dict(*args, **kwargs), output))
        return output


@contextmanager
def recording(env: jinja2.Environment) -> Iterator[list[Recorded]]:
    """Record every Template.render made through env.get_template (benchmark only)."""
    log: list[Recorded] = []
    original = env.get_template

    def get_template(*args: Any, **kwargs: Any) -> _RecordingTemplate:
        return _RecordingTemplate(original(*args, **kwargs), log)

    setattr(env, "get_template", get_template)  # noqa: B010 - shadow the bound method
    try:
        yield log
    finally:
        delattr(env, "get_template")


def host_vars(files: Mapping[str, str], log: list[Recorded]) -> dict[str, Plain]:
    """The variables of one gateway: the render contexts of its files merged, plus the list of
    (template, file) pairs for the playbook's loop. Other renders (prefix-list snippets) are
    already inside the variables as text."""
    merged: dict[str, Plain] = {}
    loop: list[Plain] = []
    for file_name in sorted(files):
        calls = [r for r in log if Path(r.template).name == f"{file_name}.j2"
                 and r.output == files[file_name]]
        if len(calls) != 1:
            raise RuntimeError(f"{file_name}: {len(calls)} matching template renders recorded")
        call = calls[0]
        for key, value in _mapping(call.context).items():
            if key in merged and merged[key] != value:
                raise RuntimeError(f"{file_name}: variable {key!r} differs between files")
            merged[key] = value
        loop.append({"template": call.template, "file": file_name})
    if "dcvpn_files" in merged:
        raise RuntimeError("a template variable is called dcvpn_files")
    merged["dcvpn_files"] = loop
    return merged


# ------------------------------------------------------------------------ Ansible side

PLAYBOOK = """\
- name: Render dcvpn templates with ansible.builtin.template
  hosts: dcvpn
  gather_facts: false
  tasks:
    - name: Render one file
      ansible.builtin.template:
        src: "{{ dcvpn_templates }}/{{ item.template }}"
        dest: "{{ dcvpn_out }}/{{ inventory_hostname }}/{{ item.file }}"
        trim_blocks: true
        lstrip_blocks: true
        mode: "0644"
      loop: "{{ dcvpn_files }}"
"""


def ansible_venv() -> Path:
    """bench/.venv-ansible with ANSIBLE_CORE, created or updated on demand."""
    python = ANSIBLE_VENV / "bin" / "python"
    want = ANSIBLE_CORE.split("==")[1]
    probe = [str(python), "-c",
             "import importlib.metadata as m; print(m.version('ansible-core'))"]
    if python.exists():
        have = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=60)
        if have.returncode == 0 and have.stdout.strip() == want:
            return ANSIBLE_VENV
    else:
        print(f"creating {ANSIBLE_VENV} with {ANSIBLE_CORE} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True,
                       timeout=120)
    subprocess.run([str(python), "-m", "pip", "install", "-q", ANSIBLE_CORE], check=True,
                   timeout=PIP_TIMEOUT)
    return ANSIBLE_VENV


def prepare_ansible(fabric: Path, work: Path, limit: int, forks: int) -> list[str]:
    """Inventory, host_vars, playbook and ansible.cfg for the first `limit` gateways."""
    compiled = compile_fabric(load_fabric(fabric).fabric)
    names = [gw.name for _, gw in compiled.gateways()][:limit]
    (work / "host_vars").mkdir(parents=True)
    for name in names:
        with recording(environment()) as log:
            files = render_gateway(compiled, name)
        data = host_vars(files, log)
        (work / "host_vars" / f"{name}.json").write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (work / "out" / name).mkdir(parents=True)  # the template module makes no folders
    (work / "inventory.ini").write_text(
        "[dcvpn]\n" + "".join(f"{n} ansible_connection=local\n" for n in names)
        + "\n[dcvpn:vars]\nansible_python_interpreter={{ ansible_playbook_python }}\n",
        encoding="utf-8")
    (work / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
    (work / "ansible.cfg").write_text(
        f"[defaults]\ninventory = inventory.ini\nforks = {forks}\n"
        "retry_files_enabled = false\nhost_key_checking = false\nnocolor = true\n",
        encoding="utf-8")
    return names


def run_playbook(venv: Path, work: Path) -> tuple[float, float]:
    """(wall, CPU user + sys of ansible-playbook and all its forks) in seconds."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
           "ANSIBLE_HOME": str(work / "home"), "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
           "ANSIBLE_REMOTE_TEMP": str(work / "remote-tmp"), "PYTHONHASHSEED": "0"}
    extra = {"dcvpn_templates": str(TEMPLATES_DIR), "dcvpn_out": str(work / "out")}
    cmd = [str(venv / "bin" / "ansible-playbook"), "site.yml", "-e", json.dumps(extra)]
    log = work / "ansible.log"
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as stdout:
        proc = subprocess.run(cmd, cwd=work, stdout=stdout, stderr=subprocess.STDOUT,
                              check=False, timeout=PLAYBOOK_TIMEOUT, env=env)
    wall = time.perf_counter() - start
    cpu = _cpu(resource.RUSAGE_CHILDREN) - cpu
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8").splitlines()[-40:]
        raise SystemExit("ansible-playbook failed:\n" + "\n".join(tail))
    return wall, cpu


def compare(names: list[str], dcvpn_out: Path, ansible_out: Path) -> list[str]:
    """Files that are not byte-identical, each with the reason."""
    problems = []
    for name in names:
        for ours in sorted((dcvpn_out / name).iterdir()):
            theirs = ansible_out / name / ours.name
            where = f"{name}/{ours.name}"
            if not theirs.is_file():
                problems.append(f"{where}: missing in the Ansible output")
                continue
            a, b = ours.read_bytes(), theirs.read_bytes()
            if a != b:
                problems.append(f"{where}: {_difference(a, b)}")
    return problems


def _difference(a: bytes, b: bytes) -> str:
    a_body, b_body = a.rstrip(b"\n"), b.rstrip(b"\n")
    if a_body == b_body:
        return (f"trailing newlines differ (dcvpn {len(a) - len(a_body)}, "
                f"Ansible {len(b) - len(b_body)})")
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), 1):
        if x != y:
            return f"line {number}: dcvpn {x[:80]!r} vs Ansible {y[:80]!r}"
    return f"one is a prefix of the other ({len(a)} vs {len(b)} bytes)"


# --------------------------------------------------------------------------- reporting


def _full_table(r: dict[str, Any]) -> str:
    t = r["times"]
    per = ", ".join(f"{p} {s:.2f}" for p, s in r["render_by_platform"].items())
    return "\n".join([
        f"| {SITES:,}-site {TOPOLOGY}, mixed platforms | fastest of {r['runs']} runs |",
        "| --- | ---: |",
        f"| gateways / tunnels | {r['gateways']:,} / {r['tunnels']:,} |",
        f"| files written / size | {r['files']:,} / {r['bytes'] / 1e6:.0f} MB |",
        f"| YAML load (s) | {t['load']:.2f} |",
        f"| lint (s) | {t['lint']:.2f} |",
        f"| compile (s) | {t['compile']:.2f} |",
        f"| render (s) | {t['render']:.2f} ({per}) |",
        f"| write (s) | {t['write']:.2f} |",
        f"| load + lint + compile + render + write (s) | {sum(t.values()):.2f} |",
        f"| whole process, interpreter start to exit (s) | {r['process_s']:.2f} |",
        f"| CPU time of the process, user + sys (s) | {r['cpu_s']:.2f} |",
        f"| peak RSS (MB) | {r['maxrss_mb']:.0f} |",
    ])


def _subset_rows(sub: dict[str, Any]) -> list[tuple[str, float]]:
    t = sub["times"]
    return [
        ("render (templates only)", t["render"]),
        ("render + write", t["render"] + t["write"]),
        ("load + lint + compile + render + write", sum(t.values())),
        ("whole process, interpreter start to exit", sub["process_s"]),
    ]


def _ratio_table(sub: dict[str, Any]) -> str:
    ansible_s = sub["ansible_s"]
    lines = [
        f"| {sub['gateways']} gateways ({sub['files']} files) | dcvpn (s), fastest of "
        f"{sub['runs']} | ansible-playbook, forks={sub['ansible_forks']} (s) | Ansible / dcvpn |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {label} | {s:.2f} | {ansible_s:.1f} | {ansible_s / s:,.0f}x |"
              for label, s in _subset_rows(sub)]
    cpu, ansible_cpu = sub["cpu_s"], sub["ansible_cpu_s"]
    lines.append(f"| CPU time (user + sys) of the whole process(es) | {cpu:.2f} "
                 f"| {ansible_cpu:.1f} | {ansible_cpu / cpu:,.0f}x |")
    return "\n".join(lines)


def _missed(report: dict[str, Any]) -> list[str]:
    full = report["full"]
    missed = []
    if full["process_s"] > TARGET_SECONDS or full["maxrss_mb"] > TARGET_RSS_MB:
        missed.append(f"full run {full['process_s']:.1f} s / {full['maxrss_mb']:.0f} MB "
                      f"(target < {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB)")
    sub = report.get("subset")
    if sub:
        # like for like: both start from the per-host variables and end with written files
        ratio = sub["ansible_s"] / (sub["times"]["render"] + sub["times"]["write"])
        if ratio < TARGET_RATIO:
            missed.append(f"Ansible / dcvpn render + write is {ratio:.0f}x "
                          f"(expected >= {TARGET_RATIO:.0f}x)")
        if sub["differences"]:
            missed.append(f"{len(sub['differences'])} files differ between Ansible and dcvpn")
    return missed


def _print_report(report: dict[str, Any]) -> None:
    full = report["full"]
    print(_full_table(full))
    print(f"\ntarget: whole process < {TARGET_SECONDS:.0f} s and peak RSS < "
          f"{TARGET_RSS_MB:.0f} MB; load average {full['loadavg']:.1f} before the reported run")
    if full["findings"]:
        print(f"lint findings: {', '.join(full['findings'])}")
    sub = report.get("subset")
    if not sub:
        return
    print(f"\n{_ratio_table(sub)}")
    print(f"\n{sub['ansible_core']}, ansible_connection=local, gather_facts off, load average "
          f"{sub['ansible_loadavg']:.1f} before the playbook; dcvpn loads, lints and compiles the "
          f"whole {SITES:,}-site fabric either way; target: render + write >= "
          f"{TARGET_RATIO:.0f}x")
    print(f"byte-identical output: {sub['files'] - len(sub['differences'])} of {sub['files']} "
          "files")
    for line in sub["differences"]:
        print(f"  differs: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", metavar="FABRIC", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=PHASES,
                        help="print the cProfile of this phase of the full run (stderr)")
    parser.add_argument("--skip-ansible", action="store_true",
                        help="only the dcvpn figures (no Ansible venv, no playbook run)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each dcvpn scenario; the fastest is reported (default 3)")
    parser.add_argument("--forks", type=int, default=ANSIBLE_FORKS,
                        help=f"Ansible forks (default {ANSIBLE_FORKS})")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(Path(args.child), Path(args.out), args.limit, args.profile)))
        return 0

    report: dict[str, Any] = {}
    venv = None if args.skip_ansible else ansible_venv()
    with tempfile.TemporaryDirectory(prefix="dcvpn-bench-render-") as tmp:
        root = Path(tmp)
        fabric = root / f"{TOPOLOGY}-{SITES}-mixed.yaml"
        fabric.write_text(fabric_yaml(generate(SITES, TOPOLOGY, mixed_platforms=True)),
                          encoding="utf-8")
        full = report["full"] = _best_of(
            args.repeat, lambda: _run_child(fabric, _fresh(root / "full"), None, args.profile))
        shutil.rmtree(root / "full")
        if args.profile:
            print(f"== full run: {args.profile}\n{full.pop('profile')}", file=sys.stderr)
        if venv is not None:
            sub = _best_of(args.repeat,
                           lambda: _run_child(fabric, _fresh(root / "dcvpn"), SUBSET, None))
            names = prepare_ansible(fabric, root / "ansible", SUBSET, args.forks)
            load = os.getloadavg()[0]
            ansible_s, ansible_cpu = run_playbook(venv, root / "ansible")
            report["subset"] = {
                **sub, "ansible_s": ansible_s, "ansible_cpu_s": ansible_cpu,
                "ansible_forks": args.forks, "ansible_core": ANSIBLE_CORE, "ansible_loadavg": load,
                "differences": compare(names, root / "dcvpn", root / "ansible" / "out")}

    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_report(report)
    missed = _missed(report)
    if missed:
        print(f"target missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
