"""tasks.deploy asks a driver for a native-only diff only when its diff takes `unified`."""

from typing import Any

from drivers.base import ConfigDiff, LoadMode
from tasks.deploy import _load_and_diff


class Before:
    """A driver written before diff had the `unified` parameter."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, LoadMode]] = []

    def load_candidate(self, config: str, mode: LoadMode = LoadMode.REPLACE) -> None:
        self.loaded.append((config, mode))

    def diff(self) -> ConfigDiff:
        return ConfigDiff(native="+ x", unified="--- running\n+++ candidate\n")


class After(Before):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[bool] = []

    def diff(self, unified: bool = True) -> ConfigDiff:
        self.asked.append(unified)
        return ConfigDiff(native="+ x", unified="--- running\n" if unified else "")


def test_an_older_driver_gets_its_plain_diff_call() -> None:
    old: Any = Before()
    assert _load_and_diff(old, "cfg", unified=False).native == "+ x"
    assert old.loaded == [("cfg", LoadMode.REPLACE)]


def test_a_current_driver_is_asked_for_the_native_diff_only() -> None:
    new: Any = After()
    assert _load_and_diff(new, "cfg", unified=False).unified == ""
    assert _load_and_diff(new, "cfg").unified == "--- running\n"
    assert new.asked == [False, True]
