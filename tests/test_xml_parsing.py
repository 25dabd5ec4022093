"""Parsing on many threads at once (drivers.xml_parsing): a parser per thread, a string
dictionary per thread, so parallel parses do not corrupt the process's memory."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from drivers import xml_parsing
from drivers.nornir_connection import CONNECTION, driver_for
from drivers.xml_parsing import untrusted_parser

ROOT = Path(__file__).resolve().parent.parent

# Threads parse documents full of names never seen before (each one interned in a string
# dictionary) through the calling thread's parser and through ncclient's to_ele, whose parser
# every thread shares, and add elements of new names; the main thread does the same. Before
# the per-thread parsers, this pattern ended in "Opening and ending tag mismatch" on
# well-formed XML or killed the process (double free, SIGSEGV) within a few seconds.
STRESS = textwrap.dedent("""
    import random, sys, threading, time
    from lxml import etree
    from ncclient.xml_ import to_ele
    from drivers.xml_parsing import own_dictionary, untrusted_parser

    SECONDS = float(sys.argv[1])

    def document(rng):
        names = [f"n{rng.getrandbits(40):x}" for _ in range(150)]
        return "<r>" + "".join(f"<{n} {n}a='{rng.getrandbits(30)}'>{rng.getrandbits(20)}</{n}>"
                               for n in names) + "</r>"

    def parse(rng):
        text = document(rng)
        if rng.random() < 0.5:
            return to_ele(text)
        return etree.fromstring(text.encode(), untrusted_parser())

    def work(seed, stop, failures):
        rng = random.Random(seed)
        try:
            own_dictionary()
            for _ in range(100000):
                if stop.is_set():
                    return
                tree = parse(rng)
                for _ in range(30):
                    etree.SubElement(tree, f"e{rng.getrandbits(40):x}")
                etree.tostring(tree)
        except Exception as exc:
            failures.append(repr(exc))

    to_ele("<main/>")  # ncclient's shared parser now holds the main thread's dictionary
    stop, failures = threading.Event(), []
    threads = [threading.Thread(target=work, args=(seed, stop, failures)) for seed in range(4)]
    for thread in threads:
        thread.start()
    rng, end, parsed = random.Random(99), time.monotonic() + SECONDS, 0
    try:
        while time.monotonic() < end and parsed < 100000:
            parse(rng)
            parsed += 1
    except Exception as exc:
        failures.append(repr(exc))
    stop.set()
    for thread in threads:
        thread.join(30)
    print("failures", failures, "parsed", parsed)
    sys.exit(1 if failures else 0)
""")


def test_parallel_parsing_of_new_names_keeps_the_process_sound() -> None:
    done = subprocess.run([sys.executable, "-c", STRESS, "5"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "failures [] parsed" in done.stdout


def test_each_thread_has_its_own_parser_and_keeps_it() -> None:
    seen: dict[str, tuple[etree.XMLParser, etree.XMLParser]] = {}

    def ask(name: str) -> None:
        seen[name] = (untrusted_parser(), untrusted_parser())

    threads = [threading.Thread(target=ask, args=(str(n),)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 3 and all(first is again for first, again in seen.values())
    firsts = [first for first, _ in seen.values()]
    assert len({id(p) for p in firsts}) == 3  # all alive (held here): distinct objects
    assert all(untrusted_parser() is not p for p in firsts)
    assert untrusted_parser(huge_tree=True) is not untrusted_parser()


def test_parser_refuses_entities_and_drops_blank_text() -> None:
    hostile = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    root = etree.fromstring(hostile, untrusted_parser())
    assert "root:" not in etree.tostring(root).decode()
    tidy = etree.fromstring(b"<r>\n  <a>1</a>\n</r>", untrusted_parser())
    assert tidy.text is None and etree.tostring(tidy) == b"<r><a>1</a></r>"
    kept = etree.fromstring(b"<r>\n  <a>1</a>\n</r>", untrusted_parser(remove_blank_text=False))
    assert kept.text == "\n  "


def test_huge_tree_is_asked_for() -> None:
    deep = b"<a>" * 300 + b"</a>" * 300  # libxml2's depth limit without huge_tree is 256
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(deep, untrusted_parser())
    assert etree.fromstring(deep, untrusted_parser(huge_tree=True)).tag == "a"



def test_a_driver_task_owns_its_dictionary_before_the_driver_works() -> None:
    """driver_for, which every driver task calls first, gives its worker thread a dictionary
    of its own: the driver's first lxml work (ncclient parses its request through a parser
    every thread shares) then cannot tie the thread to another worker's."""
    driver = object()
    host = SimpleNamespace(connections={CONNECTION: driver},
                           get_connection=lambda name, config: driver)
    task = SimpleNamespace(host=host, nornir=SimpleNamespace(config=None))
    seen: list[tuple[bool, bool, object]] = []

    def worker() -> None:
        before = bool(getattr(xml_parsing._local, "owned", False))
        found = driver_for(task)  # type: ignore[arg-type]
        seen.append((before, bool(getattr(xml_parsing._local, "owned", False)), found))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert seen == [(False, True, driver)]
