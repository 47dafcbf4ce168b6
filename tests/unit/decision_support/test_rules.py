"""Each rule's thresholds at their exact boundaries, and published worked examples."""

from __future__ import annotations

import pytest

from decision_support.features import FASTING_GLUCOSE, HBA1C, OGTT_2H_GLUCOSE, Measurement
from decision_support.rules import (
    ada_diabetes,
    allergies,
    bp_acc_aha_2017,
    cha2ds2_vasc,
    ckd_epi_2021,
    interactions,
    metformin_renal,
    pooled_cohort_2013,
)


def m(code: str, value: float, when: str = "2026-01-10") -> Measurement:
    return Measurement(code, value, "", when, f"Observation/{code}-{when}")


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        (HBA1C, 5.6, "normal"), (HBA1C, 5.7, "prediabetes"), (HBA1C, 6.4, "prediabetes"),
        (HBA1C, 6.5, "diabetes"),
        (FASTING_GLUCOSE, 99, "normal"), (FASTING_GLUCOSE, 100, "prediabetes"),
        (FASTING_GLUCOSE, 125, "prediabetes"), (FASTING_GLUCOSE, 126, "diabetes"),
        (OGTT_2H_GLUCOSE, 139, "normal"), (OGTT_2H_GLUCOSE, 140, "prediabetes"),
        (OGTT_2H_GLUCOSE, 199, "prediabetes"), (OGTT_2H_GLUCOSE, 200, "diabetes"),
    ],
)  # fmt: skip
def test_ada_thresholds(code: str, value: float, expected: str) -> None:
    assert ada_diabetes.category(m(code, value)) == expected


def test_ada_needs_two_abnormal_results_on_two_tests_or_two_days() -> None:
    assert ada_diabetes.assess([]) is None
    one = ada_diabetes.assess([m(HBA1C, 6.9)])
    assert one is not None and one.status == "needs-confirmation"
    same_day_two_tests = ada_diabetes.assess([m(HBA1C, 6.9), m(FASTING_GLUCOSE, 130)])
    assert same_day_two_tests is not None and same_day_two_tests.status == "diagnostic"
    same_test_two_days = ada_diabetes.assess([m(HBA1C, 6.9, "2026-02-01"), m(HBA1C, 6.6, "2026-01-01")])
    assert same_test_two_days is not None and same_test_two_days.status == "diagnostic"
    newest_normal = ada_diabetes.assess([m(HBA1C, 5.5, "2026-02-01"), m(HBA1C, 6.0, "2026-01-01")])
    assert newest_normal is not None and newest_normal.status == "normal"


@pytest.mark.parametrize(
    ("creatinine", "age", "sex", "expected"),
    # Worked by hand from the published equation (Inker et al. 2021), rounded mL/min/1.73 m2.
    [(1.0, 50, "female", 69), (1.0, 50, "male", 92), (0.7, 40, "female", 112), (2.0, 70, "male", 35)],
)
def test_ckd_epi_2021_reference_values(creatinine: float, age: int, sex: str, expected: int) -> None:
    assert round(ckd_epi_2021.egfr(creatinine, age, sex)) == expected


def test_ckd_epi_female_factor_and_kappa() -> None:
    # At Scr == kappa both min and max terms are 1: eGFR = 142 * 0.9938^age (* 1.012 for women).
    assert ckd_epi_2021.egfr(0.9, 60, "male") == pytest.approx(142 * 0.9938**60)
    assert ckd_epi_2021.egfr(0.7, 60, "female") == pytest.approx(142 * 0.9938**60 * 1.012)
    with pytest.raises(ValueError, match="adults"):
        ckd_epi_2021.egfr(1.0, 17, "male")


@pytest.mark.parametrize(
    ("egfr", "category"),
    [(90, "G1"), (89.9, "G2"), (60, "G2"), (59.9, "G3a"), (45, "G3a"), (44.9, "G3b"), (30, "G3b"),
     (29.9, "G4"), (15, "G4"), (14.9, "G5")],
)  # fmt: skip
def test_kdigo_categories(egfr: float, category: str) -> None:
    assert ckd_epi_2021.category(egfr) == category


@pytest.mark.parametrize(
    ("sbp", "dbp", "stage"),
    [(119, 79, "normal"), (120, 79, "elevated"), (129, 79, "elevated"), (130, 79, "stage-1"),
     (120, 80, "stage-1"),
     (139, 89, "stage-1"), (140, 70, "stage-2"), (110, 90, "stage-2")],
)  # fmt: skip
def test_bp_stages(sbp: float, dbp: float, stage: str) -> None:
    assert bp_acc_aha_2017.stage(sbp, dbp) == stage


def test_bp_crisis_is_above_180_or_120() -> None:
    assert not bp_acc_aha_2017.crisis(180, 120)
    assert bp_acc_aha_2017.crisis(181, 100) and bp_acc_aha_2017.crisis(150, 121)


@pytest.mark.parametrize(
    ("egfr", "verdict"),
    [(29.9, "contraindicated"), (30, "do-not-initiate"), (44.9, "do-not-initiate"), (45, "ok")],
)
def test_metformin_renal_limits(egfr: float, verdict: str) -> None:
    assert metformin_renal.check(egfr) == verdict


@pytest.mark.parametrize(
    ("sex", "race", "published"),
    # Goff et al. 2013, worked example: 55 years, TC 213, HDL 50, untreated SBP 120, non-smoker, no diabetes.
    [("female", "white", 2.1), ("female", "african-american", 3.0), ("male", "white", 5.3),
     ("male", "african-american", 6.1)],
)  # fmt: skip
def test_pooled_cohort_equations_worked_example(sex: str, race: str, published: float) -> None:
    risk = pooled_cohort_2013.ten_year_risk(
        sex=sex, race=race, age=55, total_cholesterol=213, hdl=50, systolic=120,
        treated=False, smoker=False, diabetes=False,
    )  # fmt: skip
    # The paper rounds its intermediate sums to two decimals (60.69 for white men, where the
    # coefficients give 60.70), which moves that group's figure by 0.1 point.
    assert 100 * risk == pytest.approx(published, abs=0.11)


def test_pooled_cohort_risk_rises_with_each_factor() -> None:
    base = {"sex": "male", "race": "white", "age": 55, "total_cholesterol": 213, "hdl": 50, "systolic": 120,
            "treated": False, "smoker": False, "diabetes": False}  # fmt: skip
    reference = pooled_cohort_2013.ten_year_risk(**base)  # type: ignore[arg-type]
    for change in ({"smoker": True}, {"diabetes": True}, {"systolic": 150}, {"age": 65}, {"hdl": 35}):
        assert pooled_cohort_2013.ten_year_risk(**{**base, **change}) > reference  # type: ignore[arg-type]
    assert pooled_cohort_2013.in_range(40, 130, 20, 90) and not pooled_cohort_2013.in_range(39, 200, 50, 120)


def test_cha2ds2_vasc_examples() -> None:
    f = cha2ds2_vasc.Factors
    assert cha2ds2_vasc.score(f(age=50, female=False)) == 0
    assert cha2ds2_vasc.score(f(age=64, female=True)) == 1
    assert cha2ds2_vasc.score(f(age=65, female=False)) == 1
    assert cha2ds2_vasc.score(f(age=75, female=False)) == 2
    every = f(age=80, female=True, heart_failure=True, hypertension=True, diabetes=True, stroke_or_tia=True,
              vascular_disease=True)  # fmt: skip
    assert cha2ds2_vasc.score(every) == 9  # the scale's maximum
    assert cha2ds2_vasc.anticoagulation_recommended(f(age=50, female=False, hypertension=True, diabetes=True))
    assert not cha2ds2_vasc.anticoagulation_recommended(f(age=50, female=True, hypertension=True))
    assert cha2ds2_vasc.anticoagulation_recommended(f(age=50, female=True, hypertension=True, diabetes=True))


def test_interactions_match_either_order_and_nothing_else() -> None:
    hits = interactions.find("simvastatin 40 mg oral tablet", "clarithromycin 500 mg")
    assert [(row.severity, a, b) for row, a, b in hits] == [("critical", "simvastatin", "clarithromycin")]
    reverse = interactions.find("clarithromycin 500 mg", "simvastatin 40 mg")
    assert [(a, b) for _, a, b in reverse] == [("clarithromycin", "simvastatin")]
    assert interactions.find("amoxicillin", "simvastatin") == []
    assert all(row.source and row.effect for row in interactions.table())


def test_allergy_conflicts_by_name_and_class() -> None:
    penicillin = {"code": {"text": "Penicillin"}, "clinicalStatus": {"coding": [{"code": "active"}]}}
    assert allergies.conflict("amoxicillin 500 mg capsule", penicillin) == "penicillin"
    assert allergies.conflict("metformin 500 mg", penicillin) is None
    refuted = {**penicillin, "verificationStatus": {"coding": [{"code": "refuted"}]}}
    assert allergies.active(penicillin) and not allergies.active(refuted)
