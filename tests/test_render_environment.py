"""tasks.render's shared Jinja2 environment under a deploy's worker threads."""

import threading
import time
from typing import Any

import jinja2
import pytest

from tasks import render


def test_a_template_is_compiled_once_when_threads_ask_for_it_together(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """jinja2 compiles a template in every thread that misses its cache; 50 deploy workers
    rendering at once compiled each template 50 times."""
    env = render._Environment(loader=jinja2.DictLoader({"t.j2": "{{ x }}"}))
    loads: list[str] = []
    original = jinja2.DictLoader.load

    def slow_load(self: Any, environment: Any, name: str, globals: Any = None) -> Any:
        loads.append(name)
        time.sleep(0.05)  # a compile long enough for the others to miss the cache meanwhile
        return original(self, environment, name, globals)

    monkeypatch.setattr(jinja2.DictLoader, "load", slow_load)
    got: list[jinja2.Template] = []
    threads = [threading.Thread(target=lambda: got.append(env.get_template("t.j2")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert loads == ["t.j2"]
    assert len(got) == 8 and all(t is got[0] for t in got)
    assert got[0].render(x=1) == "1"


def test_the_shared_environment_does_not_look_for_changed_templates() -> None:
    assert isinstance(render.environment(), render._Environment)
    assert render.environment().auto_reload is False
