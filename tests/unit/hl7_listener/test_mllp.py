"""MLLP framing: frames out of arbitrary reads, garbage skipped, size limit enforced."""

from __future__ import annotations

import itertools
import tracemalloc

import hypothesis
import hypothesis.strategies as st
import pytest

from hl7_listener.mllp import Frame, FrameDecoder, Oversized, Skipped, encode

MSG = b"MSH|^~\\&|LAB|HOSP|||20240101||ADT^A01|1|P|2.5\rPID|1||123\r"


def frames(events: list[object]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Frame)]


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_one_frame_in_one_read() -> None:
    assert FrameDecoder(1024).feed(encode(MSG)) == [Frame(MSG)]


def test_several_frames_in_one_read() -> None:
    data = encode(b"a") + encode(b"b") + encode(b"c")
    assert frames(FrameDecoder(1024).feed(data)) == [b"a", b"b", b"c"]


def test_one_frame_across_byte_sized_reads() -> None:
    data = encode(MSG)
    decoder = FrameDecoder(1024)
    events = feed_all(decoder, [data[i : i + 1] for i in range(len(data))])
    assert events == [Frame(MSG)]
    assert not decoder.mid_frame


def test_end_block_split_between_reads() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(b"\x0bhello\x1c") == []
    assert decoder.mid_frame
    assert decoder.feed(b"\r") == [Frame(b"hello")]


def test_fs_without_cr_is_payload() -> None:
    assert FrameDecoder(1024).feed(b"\x0ba\x1cb\x1c\r") == [Frame(b"a\x1cb")]


def test_bytes_before_start_block_are_skipped_and_reported() -> None:
    events = FrameDecoder(1024).feed(b"junk\r\n" + encode(b"x"))
    assert events == [Skipped(6, b"junk\r\n"), Frame(b"x")]


def test_bytes_between_frames_are_skipped() -> None:
    events = FrameDecoder(1024).feed(encode(b"a") + b"\n" + encode(b"b"))
    assert events == [Frame(b"a"), Skipped(1, b"\n"), Frame(b"b")]


def test_skip_preview_is_bounded() -> None:
    events = FrameDecoder(1024).feed(b"z" * 5000)
    assert events == [Skipped(5000, b"z" * 32)]


def test_start_block_inside_frame_restarts_it() -> None:
    events = FrameDecoder(1024).feed(b"\x0bpartial\x0bwhole\x1c\r")
    assert events == [Skipped(8, b"partial"), Frame(b"whole")]


def test_frame_of_exactly_max_size_passes() -> None:
    assert FrameDecoder(10).feed(encode(b"0123456789")) == [Frame(b"0123456789")]


def test_frame_of_exactly_max_size_split_before_cr_passes() -> None:
    decoder = FrameDecoder(10)
    assert decoder.feed(b"\x0b0123456789\x1c") == []
    assert decoder.feed(b"\r") == [Frame(b"0123456789")]


def test_oversized_frame_reported_once_and_discarded() -> None:
    decoder = FrameDecoder(10)
    events = feed_all(decoder, [b"\x0b" + b"x" * 8, b"y" * 8, b"z" * 100, b"\x1c", b"\r", encode(b"ok")])
    assert events == [Oversized(10), Frame(b"ok")]
    assert decoder.buffered == 0


def test_oversized_in_one_read() -> None:
    assert FrameDecoder(3).feed(encode(b"abcd") + encode(b"abc")) == [Oversized(3), Frame(b"abc")]


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameDecoder(0)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    payloads=st.lists(st.binary(max_size=60).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))),
    cuts=st.lists(st.integers(min_value=0, max_value=2000)),
)
def test_any_split_of_valid_frames_yields_them_in_order(payloads: list[bytes], cuts: list[int]) -> None:
    data = b"".join(encode(p) for p in payloads)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    assert frames(feed_all(FrameDecoder(64), chunks)) == payloads


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from([b"\x0b", b"\x1c", b"\r", b"\x1c\r", b"\x0bMSH|", b"x" * 200]),
        ),
        max_size=50,
    )
)
def test_fuzz_never_crashes_and_memory_stays_bounded(chunks: list[bytes]) -> None:
    limit = 128
    decoder = FrameDecoder(limit)
    for chunk in chunks:
        for event in decoder.feed(chunk):
            if isinstance(event, Frame):
                assert len(event.payload) <= limit
                assert b"\x0b" not in event.payload
        assert decoder.buffered <= limit + 1


def test_memory_bounded_under_endless_stream() -> None:
    decoder = FrameDecoder(4096)
    chunk = b"\x0b" + b"A" * 65535
    tracemalloc.start()
    try:
        for _ in range(200):  # ~13 MB without an end block
            decoder.feed(chunk[1:] if decoder.mid_frame else chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered <= 4097
    assert peak < 1_000_000
