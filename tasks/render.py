"""Render task: the files of one gateway from the compiled model, byte-for-byte deterministic.

One shared Jinja2 environment (templates compiled once per process). Each platform has a
Renderer, found through the `dcvpn.renderers` entry-point group, so a site can add one.
"""

import json
import os
import threading
from collections.abc import Mapping, MutableMapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import jinja2
from nornir.core.task import Result, Task

from inventory.model import Platform
from inventory.topology import CompiledFabric
from tasks.errors import RenderError
from tasks.intent import INTENT_FILE, gateway_intent
from tasks.render_context import GatewayView, gateway_view

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@runtime_checkable
class Renderer(Protocol):
    platform: Platform

    def render(self, view: GatewayView, env: jinja2.Environment) -> dict[str, str]:
        """File name -> content for one gateway."""
        ...


@runtime_checkable
class PkiRenderer(Renderer, Protocol):
    """A renderer that can embed certificates of a PKI directory (never a private key)."""

    def render_pki(self, view: GatewayView, env: jinja2.Environment,
                   pki_dir: Path) -> dict[str, str]:
        ...


@runtime_checkable
class FileRenderer(Renderer, Protocol):
    """A renderer that can make one of its files alone (a deploy sends one, the candidate)."""

    def render_file(self, view: GatewayView, env: jinja2.Environment, name: str) -> str:
        """The content of file `name` of `render`, made without the others."""
        ...


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".xml.j2"))


class _Environment(jinja2.Environment):
    """Compiles each template once when many worker threads render at the same time: jinja2
    compiles a template in every thread that misses its cache (50 workers of a deploy each
    compiled the same templates)."""

    _lock = threading.Lock()

    def get_template(self, name: str | jinja2.Template, parent: str | None = None,
                     globals: MutableMapping[str, object] | None = None) -> jinja2.Template:
        with self._lock:
            return super().get_template(name, parent, globals)


@cache
def environment() -> jinja2.Environment:
    return _Environment(
        auto_reload=False,  # templates do not change while a process runs
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_RENDERER_LOCK = threading.Lock()


def renderer_for(platform: Platform) -> Renderer:
    """The renderer registered under the platform's name in `dcvpn.renderers` (looked up
    once: the workers of a deploy all ask at the same moment)."""
    with _RENDERER_LOCK:
        return _renderer_for(platform)


@cache
def _renderer_for(platform: Platform) -> Renderer:
    for ep in entry_points(group="dcvpn.renderers", name=str(platform)):
        renderer = ep.load()()
        if not isinstance(renderer, Renderer):
            raise RenderError(f"entry point {ep.name} does not provide a Renderer")
        return renderer
    raise RenderError(f"no renderer registered for platform {platform}")


def render_gateway(compiled: CompiledFabric, gateway: str,
                   pki_dir: Path | None = None, only: str | None = None) -> dict[str, str]:
    """The gateway's files; with `only`, at least that one (alone when the renderer can)."""
    view = gateway_view(compiled, gateway)
    renderer = renderer_for(view.gateway.platform)
    try:
        if pki_dir is not None and isinstance(renderer, PkiRenderer):
            return renderer.render_pki(view, environment(), pki_dir)
        if only is not None and isinstance(renderer, FileRenderer):
            return {only: renderer.render_file(view, environment(), only)}
        return renderer.render(view, environment())
    except jinja2.TemplateError as exc:
        raise RenderError(f"{gateway}: template error: {exc}") from exc


def write_files(out_dir: Path, gateway: str, files: Mapping[str, str],
                dry_run: bool = False) -> bool:
    """Write OUT/<gateway>/<file>; True if any byte changed (or would, when dry_run).

    Files of the folder that are no longer rendered are removed.
    """
    folder = out_dir / gateway
    changed = False
    if not dry_run:
        folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        target = folder / name
        data = files[name].encode()
        if target.is_file() and target.read_bytes() == data:
            continue
        changed = True
        if not dry_run:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    if folder.is_dir():
        for stale in sorted(folder.iterdir()):
            if stale.is_file() and stale.name not in files:
                changed = True
                if not dry_run:
                    stale.unlink()
    return changed


def render(task: Task, out_dir: str | None = None, pki_dir: str | None = None) -> Result:
    """Nornir task: render this host's files (and write them under out_dir if given).

    Beside the platform's files goes intent.json, the gateway's compiled intent, which
    `dcvpn diff --offline` compares for the semantic diff. With pki_dir, platforms that keep
    certificates in their configuration get them embedded (see PkiRenderer).
    """
    compiled: CompiledFabric = task.host["compiled"]
    files = render_gateway(compiled, task.host.name, Path(pki_dir) if pki_dir else None)
    files[INTENT_FILE] = json.dumps(gateway_intent(compiled, task.host.name), indent=2,
                                    sort_keys=True) + "\n"
    changed = False
    if out_dir is not None:
        changed = write_files(Path(out_dir), task.host.name, files, dry_run=task.is_dry_run())
    return Result(host=task.host, result=files, changed=changed)
