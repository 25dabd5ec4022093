"""NETCONF message framing over SSH (RFC 6242): base:1.0 end-of-message and base:1.1 chunks.

Messages are read with dcvpn's own client-side reader (drivers.netconf_frames), its errors
turned into the emulator's FramingError.
"""

from dataclasses import dataclass, field

from ncclient.transport.errors import NetconfFramingError  # type: ignore[import-untyped]

from drivers.netconf_frames import END_OF_CHUNKS, EOM, MAX_CHUNK_SIZE, FrameReader
from lab.emulators.errors import FramingError

DEFAULT_CHUNK_SIZE = 65536
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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


@dataclass
class Deframer:
    """Incremental reader: base:1.0 until switched to chunked after the hello exchange."""

    chunked: bool = False
    _reader: FrameReader = field(default_factory=lambda: FrameReader(MAX_MESSAGE_BYTES),
                                 repr=False)

    def feed(self, data: bytes) -> list[bytes]:
        try:
            return self._reader.feed(data, chunked=self.chunked)
        except NetconfFramingError as exc:
            raise FramingError(str(exc)) from None

    def switch_to_chunked(self) -> list[bytes]:
        """Use base:1.1 framing from now on; returns messages already buffered in that form."""
        self.chunked = True
        return self.feed(b"")

    @property
    def pending(self) -> bytes:
        return self._reader.pending
