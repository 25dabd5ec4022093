"""RFC 6242 framing: base:1.0 end-of-message and base:1.1 chunked, fed in arbitrary pieces."""

import pytest

from lab.emulators.errors import FramingError
from lab.emulators.netconf_framing import (
    EOM,
    Deframer,
    encode_chunked,
    encode_eom,
)

RPC = b'<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'


def test_eom_round_trip_and_rest() -> None:
    data = encode_eom(RPC) + encode_eom(b"<x/>") + b"<partial"
    deframer = Deframer()
    assert deframer.feed(data) == [RPC, b"<x/>"]
    assert deframer.pending == b"<partial"


def test_eom_marker_split_across_reads() -> None:
    deframer = Deframer()
    wire = encode_eom(RPC)
    got = [m for i in range(len(wire)) for m in deframer.feed(wire[i:i + 1])]
    assert got == [RPC]
    assert deframer.pending == b""


def test_chunked_encoding_matches_rfc6242_example() -> None:
    assert encode_chunked(b"<rpc/>", chunk_size=4) == b"\n#4\n<rpc\n#2\n/>\n##\n"


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 65536])
def test_chunked_round_trip_any_chunk_size(chunk_size: int) -> None:
    wire = encode_chunked(RPC, chunk_size) + encode_chunked(b"<b/>", chunk_size)
    deframer = Deframer(chunked=True)
    assert deframer.feed(wire) == [RPC, b"<b/>"]
    assert deframer.pending == b""


def test_chunked_fed_byte_by_byte() -> None:
    deframer = Deframer(chunked=True)
    wire = encode_chunked(RPC, 5) + encode_chunked(RPC, 11)
    got = [m for i in range(len(wire)) for m in deframer.feed(wire[i:i + 1])]
    assert got == [RPC, RPC]


def test_chunked_incomplete_message_is_kept() -> None:
    wire = encode_chunked(RPC, 10)
    deframer = Deframer(chunked=True)
    assert deframer.feed(wire[:-2]) == []
    assert deframer.pending == RPC + b"\n#"  # every chunk read, the end mark begun
    assert deframer.feed(wire[-2:]) == [RPC]


def test_chunk_data_may_contain_eom_and_hash_lines() -> None:
    payload = b"<a>" + EOM + b"\n##\n</a>"
    assert Deframer(chunked=True).feed(encode_chunked(payload)) == [payload]


@pytest.mark.parametrize("bad", [
    b"\n#0\n",            # zero size
    b"\n#012\nabc",       # leading zero
    b"<rpc/>\n##\n",      # no chunk header at all
    b"\n#x\n",            # not a number
    b"\n##\n",            # end-of-chunks before any chunk
    b"\n#12345678901\n",  # more than 10 digits
    b"\n#4294967296\n",   # over RFC 6242's largest chunk
])
def test_chunked_rejects_malformed_framing(bad: bytes) -> None:
    with pytest.raises(FramingError):
        Deframer(chunked=True).feed(bad)


def test_switch_to_chunked_after_hello() -> None:
    deframer = Deframer()
    hello = b"<hello/>"
    first = deframer.feed(encode_eom(hello) + encode_chunked(RPC, 9)[:5])
    assert first == [hello]
    assert deframer.switch_to_chunked() == []
    assert deframer.feed(encode_chunked(RPC, 9)[5:]) == [RPC]


def test_encode_chunked_rejects_empty_message() -> None:
    with pytest.raises(FramingError):
        encode_chunked(b"")
