"""MSH-18 character sets: which Python codec decodes a message's bytes.

MSH-18 names the character set of the whole message (its first repetition is the default
set; later repetitions are alternates switched with ``\\C..\\``/``\\M..\\`` escapes, which are
kept verbatim). It has to be read from the raw bytes before anything is decoded, which works
for every ASCII-compatible set (all of HL7 table 0211 except UTF-16/32).

Undecodable bytes never fail a message: UTF-8 (the default when MSH-18 is empty or unknown)
falls back to latin-1 byte by byte, so a sender that claims UTF-8 but sends one 8859-1 ``é``
still gets its name through.
"""

from __future__ import annotations

import codecs

# HL7 table 0211 (alternate character sets) -> Python codec.
CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR6": "ascii",
    "ISO IR14": "shift_jis",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR100": "iso8859-1",
    "ISO IR101": "iso8859-2",
    "ISO IR109": "iso8859-3",
    "ISO IR110": "iso8859-4",
    "ISO IR126": "iso8859-7",
    "ISO IR127": "iso8859-6",
    "ISO IR138": "iso8859-8",
    "ISO IR144": "iso8859-5",
    "ISO IR148": "iso8859-9",
    "ISO IR192": "utf-8",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "CNS 11643-1992": "big5",
}
DEFAULT_CODEC = "utf-8"
_FALLBACK = "hl7-latin1-fallback"


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the bytes the codec could not as latin-1 (every byte is a latin-1 character)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    return bytes(chunk).decode("latin-1"), error.end


codecs.register_error(_FALLBACK, _latin1_fallback)


def codec_for(charset: str) -> str:
    """The Python codec for an MSH-18 value (case and surrounding blanks ignored)."""
    return CODECS.get(charset.strip().upper(), DEFAULT_CODEC)


def decode(data: bytes, codec: str) -> str:
    """Decode with ``codec``; bytes it cannot decode become their latin-1 characters."""
    return data.decode(codec, _FALLBACK)


def charset_from_bytes(data: bytes) -> str:
    """MSH-18 (its first repetition, first component) read from the raw bytes; ``""`` if absent.

    Expects ``data`` to start with ``MSH``; the caller has checked that.
    """
    end = len(data)
    for stop in (b"\r", b"\n"):
        i = data.find(stop)
        if 0 <= i < end:
            end = i
    header = data[:end]
    if len(header) < 8:
        return ""
    sep = header[3:4]
    parts = header.split(sep)
    # parts[0] = "MSH", parts[1] = MSH-2, so MSH-n = parts[n - 1]
    if len(parts) < 18:
        return ""
    encoding = parts[1]
    value = parts[17]
    for delim in encoding[:2]:  # component and repetition separators
        value = value.split(bytes([delim]))[0]
    return value.decode("ascii", "replace").strip()
