"""Summary statistics of a sample: the figures the lab views report."""

from __future__ import annotations

import math
from typing import Any

PERCENTILES = (10, 25, 75, 90)


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, R type 7)."""
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float], digits: int = 4) -> dict[str, Any]:
    """n, mean, median, min, max and the percentiles; None figures for an empty sample."""
    ordered = sorted(values)
    out: dict[str, Any] = {"n": len(ordered)}
    if not ordered:
        out.update(dict.fromkeys(["mean", "median", "min", "max", *[f"p{p}" for p in PERCENTILES]]))
        return out
    out["mean"] = round(math.fsum(ordered) / len(ordered), digits)
    out["median"] = round(percentile(ordered, 50), digits)
    out["min"], out["max"] = ordered[0], ordered[-1]
    for p in PERCENTILES:
        out[f"p{p}"] = round(percentile(ordered, p), digits)
    return out


def histogram(values: list[float], bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins over [min, max] (the last bin includes max)."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    return [
        {"from": round(low + i * width, 6), "to": round(low + (i + 1) * width, 6), "count": counts[i]}
        for i in range(bins)
    ]
