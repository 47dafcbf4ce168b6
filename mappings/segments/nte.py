"""NTE -> Annotation: the notes that follow a segment (until the next non-NTE segment)."""

from __future__ import annotations

from typing import Any

from mappings.message import Segment


def following(segments: list[Segment], index: int) -> list[Segment]:
    """The NTE segments right after ``segments[index]``."""
    out = []
    for segment in segments[index + 1 :]:
        if segment.name != "NTE":
            break
        out.append(segment)
    return out


def notes(ntes: list[Segment]) -> list[dict[str, Any]]:
    """One Annotation per NTE with text (NTE-3 repetitions joined by line breaks)."""
    out = []
    for nte in ntes:
        text = "\n".join(f.text for f in nte.repetitions(3) if f)
        if text:
            out.append({"text": text})
    return out
