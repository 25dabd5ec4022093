"""NETCONF message framing over SSH (RFC 6242): base:1.0 end-of-message and base:1.1 chunks.

The split functions are pure: they take the bytes received so far and return the complete
messages plus the unconsumed rest, so a reader just keeps the rest and appends what comes next.
"""

import re
from dataclasses import dataclass, field

from lab.emulators.errors import FramingError

EOM = b"]]>]]>"
END_OF_CHUNKS = b"\n##\n"
MAX_CHUNK_SIZE = 4294967295
DEFAULT_CHUNK_SIZE = 65536
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHUNK_HEADER = re.compile(rb"\n#([1-9][0-9]{0,9})\n")
# what may still grow into a chunk header or the end-of-chunks mark
_HEADER_PREFIX = re.compile(rb"(?:\n(?:#(?:#|[1-9][0-9]{0,9})?)?)?")


def encode_eom(message: bytes) -> bytes:
    """One base:1.0 message: the XML followed by ]]>]]>."""
    return message + EOM


def encode_chunked(message: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    """One base:1.1 message: chunks of at most chunk_size bytes, then the end-of-chunks mark."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise FramingError(f"chunk size {chunk_size} out of range")
    if not message:
        raise FramingError("a chunked message needs at least one byte")
    parts = [
        b"\n#%d\n%s" % (len(message[i:i + chunk_size]), message[i:i + chunk_size])
        for i in range(0, len(message), chunk_size)
    ]
    return b"".join(parts) + END_OF_CHUNKS


def split_eom(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete base:1.0 messages in buffer (without the marker) and the rest."""
    messages: list[bytes] = []
    start = 0
    while (end := buffer.find(EOM, start)) >= 0:
        messages.append(buffer[start:end])
        start = end + len(EOM)
    rest = buffer[start:]
    if len(rest) > MAX_MESSAGE_BYTES:
        raise FramingError(f"message exceeds {MAX_MESSAGE_BYTES} bytes without ]]>]]>")
    return messages, rest


def split_chunked(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete base:1.1 messages in buffer and the rest (an incomplete message, if any).

    Raises FramingError on anything that is not a chunk header or the end-of-chunks mark.
    """
    messages: list[bytes] = []
    start = 0
    while True:
        parsed = _parse_one_chunked(buffer, start)
        if parsed is None:
            rest = buffer[start:]
            if len(rest) > MAX_MESSAGE_BYTES + 64:
                raise FramingError(f"chunked message exceeds {MAX_MESSAGE_BYTES} bytes")
            return messages, rest
        message, start = parsed
        messages.append(message)


def _parse_one_chunked(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    """The message starting at start and the offset after it, or None when incomplete."""
    pos = start
    chunks: list[bytes] = []
    while True:
        if buffer.startswith(END_OF_CHUNKS, pos):
            if not chunks:
                raise FramingError("end-of-chunks before any chunk")
            return b"".join(chunks), pos + len(END_OF_CHUNKS)
        header = _CHUNK_HEADER.match(buffer, pos)
        if header is None:
            if _HEADER_PREFIX.fullmatch(buffer, pos):
                return None
            raise FramingError(f"invalid chunk header at byte {pos}: {buffer[pos:pos + 16]!r}")
        size = int(header.group(1))
        if size > MAX_CHUNK_SIZE:
            raise FramingError(f"chunk size {size} exceeds {MAX_CHUNK_SIZE}")
        data_start = header.end()
        if len(buffer) - data_start < size:
            return None
        chunks.append(buffer[data_start:data_start + size])
        pos = data_start + size


@dataclass
class Deframer:
    """Incremental reader: base:1.0 until switched to chunked after the hello exchange."""

    chunked: bool = False
    _buffer: bytes = field(default=b"", repr=False)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if self.chunked:
            messages, self._buffer = split_chunked(self._buffer)
        else:
            messages, self._buffer = split_eom(self._buffer)
        return messages

    def switch_to_chunked(self) -> list[bytes]:
        """Use base:1.1 framing from now on; returns messages already buffered in that form."""
        self.chunked = True
        return self.feed(b"")

    @property
    def pending(self) -> bytes:
        return self._buffer
