"""ED (encapsulated data) and text OBX values -> Attachment (for reports and documents)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mappings.message import Segment

# ED-3 data subtype -> MIME type
_MIME = {
    "PDF": "application/pdf",
    "RTF": "application/rtf",
    "HTML": "text/html",
    "XML": "application/xml",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "PLAIN": "text/plain",
    "TEXT": "text/plain",
    "OCTET-STREAM": "application/octet-stream",
}


def from_obx(obx: Segment, title: str = "") -> dict[str, Any] | None:
    """OBX-5 as an Attachment: ED decoded per ED-4 (Base64, Hex, A = plain), text as UTF-8 text/plain."""
    reps = [f for f in obx.repetitions(5) if f]
    if not reps:
        return None
    out: dict[str, Any]
    if obx.get(2) == "ED":
        ed = reps[0]
        subtype, encoding, payload = ed.component(3).upper(), ed.component(4).upper(), ed.component(5)
        mime = _MIME.get(subtype) or (
            "text/plain" if ed.component(2).upper() == "TEXT" else "application/octet-stream"
        )
        try:
            if encoding == "BASE64":
                data = base64.b64encode(base64.b64decode("".join(payload.split()), validate=True)).decode()
            elif encoding == "HEX":
                data = base64.b64encode(bytes.fromhex(payload)).decode()
            else:
                data = base64.b64encode(payload.encode()).decode()
        except (binascii.Error, ValueError):
            return None
        out = {"contentType": mime, "data": data}
    else:
        text = "\n".join(f.text for f in reps)
        out = {"contentType": "text/plain; charset=utf-8", "data": base64.b64encode(text.encode()).decode()}
    if title:
        out["title"] = title
    return out
