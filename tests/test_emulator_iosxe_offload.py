"""The IOS-XE emulator's edit-config offload: the worker thread's part runs libyang on text only.

lxml is not safe across threads here: a parser on a second thread reads the name dictionary
of the thread that made the first trees while that thread adds to it, and fails at random or
crashes the process (reproduced: a host of 200 devices answered one edit-config with an
internal error, a stress loop crashed within seconds). So the offloaded work must make and
read no lxml tree; the trees are built back on the loop.
"""

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import GOLDEN
from lxml import etree
from netconf_support import require_yang

from lab.emulators import iosxe_schema, xmlutil
from lab.emulators.datastore import DeviceClock
from lab.emulators.device import Deferred
from lab.emulators.iosxe import IosxeDevice
from lab.emulators.iosxe_schema import IosxeYang, load_yang, serialized
from lab.emulators.xmlutil import NC_NS, canonical

NATIVE = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"


class _Timer:
    def cancel(self) -> None:
        pass


def _schedule(delay: float, action: Callable[[], None]) -> _Timer:
    return _Timer()


@pytest.fixture(scope="module")
def yang() -> IosxeYang:
    require_yang()
    loaded = load_yang("17.15")
    assert loaded is not None
    return loaded


def golden(gateway: str) -> str:
    return (GOLDEN / "acme-hybrid" / gateway / "config.xml").read_text()


def edit_config(config: str) -> etree._Element:
    return etree.fromstring(f'<edit-config xmlns="{NC_NS}"><target><candidate/></target>'
                            f"{config}</edit-config>")


class Tripwire:
    """Stands in for the lxml.etree module: any use of it fails the test."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        raise AssertionError(f"lxml.etree.{name} used")


def lxml_objects(work: Callable[[], Any]) -> list[Any]:
    """The lxml objects work's closure holds (a tree would be reachable on the worker)."""
    cells = [c.cell_contents for c in work.__closure__ or ()]
    return [v for v in cells if type(v).__module__.startswith("lxml")]


@pytest.fixture
def device(yang: IosxeYang) -> Iterator[IosxeDevice]:
    yield IosxeDevice(DeviceClock(), _schedule, hostname="fra1-gw1")


def test_offloaded_edit_work_makes_no_lxml_call_and_the_loop_builds_the_candidate(
        device: IosxeDevice, yang: IosxeYang, monkeypatch: pytest.MonkeyPatch) -> None:
    session = device.open_session("admin", lambda: None)
    answer = device.dispatch(session, edit_config(golden("fra1-gw1")), "edit-config")
    assert isinstance(answer, Deferred)

    assert lxml_objects(answer.work) == []
    tripwire = Tripwire()
    with monkeypatch.context() as patched:
        for module in (iosxe_schema, xmlutil):
            patched.setattr(module, "etree", tripwire)
        outcome = answer.work()
    assert tripwire.used == []

    assert answer.then(lambda: outcome) is None  # <ok/>
    candidate = device.candidate
    tunnels = candidate.findall(f"{{{NATIVE}}}native/{{{NATIVE}}}interface/{{{NATIVE}}}Tunnel")
    assert tunnels
    # the same tree the in-line check gives (schema order, types checked)
    inline, problems = yang.checked(candidate)
    assert isinstance(inline, etree._Element)
    assert canonical(inline) == canonical(candidate)
    assert problems == []


def test_work_on_another_thread_then_tree_on_this_one_answers_as_checked(
        yang: IosxeYang) -> None:
    """check_text then tree_of, split across threads as the emulator does, says what checked
    says: valid data, data failing a YANG must (parsed, validation left to validate), and
    data libyang refuses."""
    valid = etree.fromstring(golden("fra1-gw1"))
    failing_must = etree.fromstring(golden("fra1-gw1").replace(
        "<proposals>DCVPN-IKE-PROP<", "<proposals>NOPE<", 1))
    refused = etree.fromstring(golden("fra1-gw1").replace(
        "<aes-gcm-256/>", "<no-such-cipher/>", 1))
    for datastore in (valid, failing_must, refused):
        document = serialized(datastore)
        printed: list[Any] = []
        worker = threading.Thread(
            target=lambda d=document, out=printed: out.append(yang.check_text(d)))
        worker.start()
        worker.join(timeout=60)
        assert printed, "the worker thread did not finish"
        split = yang.tree_of(str(datastore.tag), printed[0])
        whole = yang.checked(datastore)
        assert split[1] == whole[1]
        if isinstance(whole[0], etree._Element):
            assert isinstance(split[0], etree._Element)
            assert canonical(split[0]) == canonical(whole[0])
        else:
            assert split[0] == whole[0]
    assert yang.checked(valid)[1] == []
    assert yang.checked(failing_must)[1] is None
    assert not isinstance(yang.checked(refused)[0], etree._Element)
