"""MLLP framing: bytes in, frames out; nothing here knows what HL7 is.

A frame is ``<VT> payload <FS><CR>`` (0x0B ... 0x1C 0x0D). The decoder is a small state
machine fed whatever a socket read returned, so one read may hold several frames and one
frame may span many reads. It keeps at most ``max_size`` payload bytes (plus one) in
memory whatever it is fed:

* bytes outside a frame are dropped and reported (:class:`Skipped`, with a short preview
  for the log);
* a start block inside a frame abandons the partial frame (a sender that gave up
  mid-message and started again) and reports it as skipped;
* a payload longer than ``max_size`` is reported once (:class:`Oversized`) and the rest of
  it discarded up to its end block; the server NAKs and closes on it.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
_START = b"\x0b"
_END = b"\x1c\r"
PREVIEW_BYTES = 32


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete payload, without the framing bytes."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    """Bytes that were not inside a frame (or a partial frame abandoned for a new one)."""

    count: int
    preview: bytes


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame grew past the limit; its bytes are being discarded."""

    limit: int


Event = Frame | Skipped | Oversized


def encode(payload: bytes) -> bytes:
    """Wrap a payload in MLLP framing."""
    return b"\x0b" + payload + b"\x1c\r"


class FrameDecoder:
    """Incremental MLLP decoder; feed it reads, get events back in order."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        self._buf = bytearray()
        self._in_frame = False
        self._discarding = False  # inside an oversized frame, dropping up to its end block
        self._pending_fs = False  # while discarding: the last byte seen was FS
        self._skipped = 0
        self._preview = bytearray()

    @property
    def mid_frame(self) -> bool:
        """True while a frame has started but not ended (a shutdown would cut it)."""
        return self._in_frame or self._discarding

    @property
    def buffered(self) -> int:
        """Payload bytes held in memory."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        pos, size = 0, len(data)
        while pos < size:
            if self._discarding:
                pos = self._discard(data, pos)
            elif self._in_frame:
                pos = self._collect(data, pos, events)
            else:
                start = data.find(_START, pos)
                if start < 0:
                    self._skip(data[pos:])
                    pos = size
                else:
                    self._skip(data[pos:start])
                    self._flush_skipped(events)
                    self._in_frame = True
                    pos = start + 1
        self._flush_skipped(events)
        return events

    # --- states -----------------------------------------------------------------------

    def _collect(self, data: bytes, pos: int, events: list[Event]) -> int:
        buf = self._buf
        if buf and buf[-1] == END_BLOCK and data[pos] == CARRIAGE_RETURN:  # end block split across reads
            del buf[-1]
            return self._finish(pos + 1, events)
        end = data.find(_END, pos)
        restart = data.find(_START, pos, end if end >= 0 else len(data))
        if restart >= 0:
            self._skip(bytes(buf[:PREVIEW_BYTES]), len(buf) + 1)
            self._skip(data[pos:restart])
            buf.clear()
            self._flush_skipped(events)
            return restart + 1
        stop = end if end >= 0 else len(data)
        # One extra byte may be the first half of the end block, so allow max_size + 1 while open.
        allowed = self.max_size if end >= 0 else self.max_size + 1
        if len(buf) + (stop - pos) > allowed:
            buf.clear()
            self._in_frame = False
            events.append(Oversized(self.max_size))
            if end >= 0:
                return end + 2
            self._discarding = True
            self._pending_fs = data[-1] == END_BLOCK
            return len(data)
        buf += data[pos:stop]
        if end < 0:
            return len(data)
        return self._finish(end + 2, events)

    def _finish(self, pos: int, events: list[Event]) -> int:
        events.append(Frame(bytes(self._buf)))
        self._buf.clear()
        self._in_frame = False
        return pos

    def _discard(self, data: bytes, pos: int) -> int:
        if self._pending_fs and data[pos] == CARRIAGE_RETURN:
            self._discarding = self._pending_fs = False
            return pos + 1
        end = data.find(_END, pos)
        if end >= 0:
            self._discarding = self._pending_fs = False
            return end + 2
        self._pending_fs = data[-1] == END_BLOCK
        return len(data)

    def _skip(self, data: bytes, count: int | None = None) -> None:
        counted = len(data) if count is None else count
        if not counted:
            return
        self._skipped += counted
        room = PREVIEW_BYTES - len(self._preview)
        if room > 0:
            self._preview += data[:room]

    def _flush_skipped(self, events: list[Event]) -> None:
        if self._skipped:
            events.append(Skipped(self._skipped, bytes(self._preview)))
            self._skipped = 0
            self._preview.clear()


__all__ = ["END_BLOCK", "START_BLOCK", "Event", "Frame", "FrameDecoder", "Oversized", "Skipped", "encode"]
