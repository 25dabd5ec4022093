"""lxml parsers that are safe on any thread.

libxml2 interns element names (and short texts) in a string dictionary; lxml gives each
thread one, and parses without holding the GIL. A parser object keeps the dictionary of the
thread that used it last, and a thread whose first lxml work is a parse through such a
parser takes that dictionary as its own: two threads then write one dictionary at the same
time and the process corrupts its memory ("Opening and ending tag mismatch" on well-formed
XML, then double free or a segfault). Measured with five threads parsing fresh names through
two shared parsers: every 5 s run failed; with a parser per thread, 15 s runs were clean.

So a parser here belongs to the thread that asks for it, and own_dictionary() gives a thread
a dictionary of its own before it calls into a library that parses through a parser shared
by every thread (ncclient's to_ele) or builds elements (which would tie the thread's
dictionary to the main thread's, read while the main thread may be writing it).
"""

import threading

from lxml import etree

_local = threading.local()


def untrusted_parser(*, remove_blank_text: bool = True, huge_tree: bool = False
                     ) -> etree.XMLParser:
    """The calling thread's parser for XML from a device or a file: no entities, no network."""
    parsers: dict[tuple[bool, bool], etree.XMLParser] | None = getattr(_local, "parsers", None)
    if parsers is None:  # a new parser's first parse gives a thread without one a dictionary
        parsers = _local.parsers = {}
    key = (remove_blank_text, huge_tree)
    parser = parsers.get(key)
    if parser is None:
        parser = parsers[key] = etree.XMLParser(
            resolve_entities=False, no_network=True, remove_blank_text=remove_blank_text,
            huge_tree=huge_tree)
    return parser


def own_dictionary() -> None:
    """Give the calling thread a string dictionary of its own, unless it has one already.

    The first parse of a new parser object hands the parser's new dictionary to a thread that
    has none; a thread that has one keeps it (for the main thread, the one lxml made at
    import).
    """
    if getattr(_local, "owned", False):
        return
    etree.fromstring(b"<own/>", etree.XMLParser())
    _local.owned = True
