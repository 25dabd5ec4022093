"""drivers.netconf_frames.FrameReader: NETCONF messages out of bytes that arrive in pieces."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ncclient.transport.errors import NetconfFramingError  # type: ignore[import-untyped]

from drivers.netconf_frames import FrameReader
from lab.emulators.netconf_framing import encode_chunked, encode_eom

MESSAGES = st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: b"]]>]]>" not in b),
                    min_size=1, max_size=5)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def read(reader: FrameReader, parts: list[bytes], *, chunked: bool) -> list[bytes]:
    out: list[bytes] = []
    for part in parts:
        out.extend(reader.feed(part, chunked=chunked))
    return out


@given(MESSAGES, st.integers(1, 64), st.lists(st.integers(0, 10**6), max_size=40))
def test_chunked_messages_in_any_pieces(messages: list[bytes], chunk: int, cuts: list[int]
                                        ) -> None:
    wire = b"".join(encode_chunked(m, chunk) for m in messages)
    reader = FrameReader()
    assert read(reader, pieces(wire, cuts), chunked=True) == messages
    assert reader.pending == b""


@given(MESSAGES, st.lists(st.integers(0, 10**6), max_size=40))
def test_end_of_message_marked_messages_in_any_pieces(messages: list[bytes], cuts: list[int]
                                                      ) -> None:
    wire = b"".join(encode_eom(m) for m in messages)
    reader = FrameReader()
    assert read(reader, pieces(wire, cuts), chunked=False) == messages


def test_byte_by_byte_and_multibyte_characters_split() -> None:
    text = "<rpc-reply>grüße ✓</rpc-reply>".encode()
    wire = encode_chunked(text, 5)  # chunk borders cut the characters' bytes
    reader = FrameReader()
    got = read(reader, [wire[i:i + 1] for i in range(len(wire))], chunked=True)
    assert got == [text]


def test_a_message_is_kept_until_complete() -> None:
    reader = FrameReader()
    wire = encode_chunked(b"<a>12345</a>", 4)
    assert reader.feed(wire[:-4], chunked=True) == []
    assert reader.pending == b"<a>12345</a>"  # every chunk, not the end mark yet
    assert reader.feed(wire[-4:], chunked=True) == [b"<a>12345</a>"]


def test_hello_then_chunked_in_one_read() -> None:
    """The server's hello (base:1.0) and its first chunked reply may arrive together."""
    reader = FrameReader()
    wire = encode_eom(b"<hello/>") + encode_chunked(b"<rpc-reply/>")
    assert reader.feed(wire, chunked=False) == [b"<hello/>"]
    assert reader.feed(b"", chunked=True) == [b"<rpc-reply/>"]


def test_end_of_message_mark_split_across_reads() -> None:
    reader = FrameReader()
    assert reader.feed(b"<a/>]]>]", chunked=False) == []
    assert reader.feed(b"]>", chunked=False) == [b"<a/>"]


@pytest.mark.parametrize("wire", [b"<rpc-reply/>", b"\n#0\n", b"\n#12x\n", b"\n##\n",
                                  b"\n#3\nabc\nXX"])
def test_what_is_not_chunked_framing_is_refused(wire: bytes) -> None:
    with pytest.raises(NetconfFramingError):
        FrameReader().feed(wire, chunked=True)


@pytest.mark.parametrize("chunked", [True, False])
def test_a_message_over_the_bound_is_refused(chunked: bool) -> None:
    reader = FrameReader(max_message=100)
    assert reader.feed(b"\n#60\n" + b"x" * 60 if chunked else b"x" * 60, chunked=chunked) == []
    with pytest.raises(NetconfFramingError):
        reader.feed(b"\n#60\n" + b"x" * 60 if chunked else b"x" * 60, chunked=chunked)
