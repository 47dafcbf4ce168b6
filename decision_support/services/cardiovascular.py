"""patient-view: blood-pressure staging, statin therapy by 10-year ASCVD risk, and
anticoagulation in atrial fibrillation by CHA2DS2-VASc; each card cites its rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from decision_support import features as fx
from decision_support.cards import COMMON_OVERRIDES, Card, Evidence, Source
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.rules import bp_acc_aha_2017 as bp
from decision_support.rules import cha2ds2_vasc as chads
from decision_support.rules import pooled_cohort_2013 as pce
from decision_support.services import common
from decision_support.services.diabetes_diagnosis import DIABETES_SNOMED

ID = "cardiovascular-prevention"
PREFETCH = {
    "patient": common.PATIENT,
    "observations": common.observations(
        fx.SYSTOLIC, fx.DIASTOLIC, fx.BP_PANEL, fx.CHOLESTEROL, fx.HDL, fx.LDL, fx.SMOKING_STATUS
    ),
    "conditions": common.CONDITIONS,
    "medications": common.MEDICATIONS,
}
HYPERTENSION = ({"38341003", "59621000"}, ("I10", "I11", "I12", "I13", "I15"))
ATRIAL_FIBRILLATION = ({"49436004", "440028005", "282825002"}, ("I48",))
HEART_FAILURE = ({"84114007", "42343007"}, ("I50",))
STROKE_TIA = ({"230690007", "266257000", "422504002"}, ("I63", "G45", "Z86.73"))
VASCULAR = ({"22298006", "399211009", "53741008", "399957001"}, ("I21", "I25", "I70", "I73.9"))
ASCVD = (
    {"22298006", "399211009", "53741008", "230690007", "266257000", "399957001"},
    ("I2", "I63", "G45", "I70"),
)
STATINS = (
    "atorvastatin",
    "simvastatin",
    "rosuvastatin",
    "pravastatin",
    "lovastatin",
    "pitavastatin",
    "fluvastatin",
)
ANTICOAGULANTS = ("warfarin", "apixaban", "rivaroxaban", "dabigatran", "edoxaban")
ANTIHYPERTENSIVES = (
    "lisinopril", "enalapril", "ramipril", "losartan", "valsartan", "amlodipine", "hydrochlorothiazide",
    "chlorthalidone", "metoprolol", "bisoprolol", "atenolol", "candesartan", "irbesartan", "nifedipine",
)  # fmt: skip
CURRENT_SMOKER = {"449868002", "428041000124106", "77176002"}
BP_WINDOW_DAYS = 365
BP_SOURCE = Source(
    "2017 ACC/AHA High Blood Pressure Guideline", bp.URL, "bp-staging", "Blood pressure staging"
)
PCE_SOURCE = Source("2013 ACC/AHA pooled cohort equations", pce.URL, "statin-therapy", "Statin therapy")
AF_SOURCE = Source(
    "CHA2DS2-VASc; 2019 AHA/ACC/HRS AF guideline", chads.URL, "af-anticoagulation", "Anticoagulation"
)


def _has(conditions: list[dict[str, Any]], codes: tuple[set[str], tuple[str, ...]]) -> list[str]:
    return fx.conditions(conditions, codes[0], codes[1])


def _taking(medications: list[dict[str, Any]], names: tuple[str, ...]) -> bool:
    return any(any(n in fx.medication_names(m) for n in names) for m in fx.active_medications(medications))


def bp_cards(
    patient_id: str, observations: list[dict[str, Any]], conditions: list[dict[str, Any]], today: date
) -> list[Card]:
    since = (today - timedelta(days=BP_WINDOW_DAYS)).isoformat()
    # Pair systolic and diastolic by the time they were taken (one panel, or two observations).
    systolic = {m.when: m for m in fx.measurements(observations, fx.SYSTOLIC) if m.when >= since}
    diastolic = {m.when: m for m in fx.measurements(observations, fx.DIASTOLIC) if m.when >= since}
    pairs = [(systolic[t], diastolic[t]) for t in sorted(systolic, reverse=True) if t in diastolic][:6]
    if not pairs:
        return []
    newest_s, newest_d = pairs[0]
    evidence = [
        Evidence(
            "Blood pressure (LOINC 8480-6/8462-4)",
            f"{s.value:.0f}/{d.value:.0f} mm Hg",
            s.when[:10],
            s.reference,
        )
        for s, d in pairs
    ]
    if bp.crisis(newest_s.value, newest_d.value):
        return [
            Card(
                "bp-crisis",
                f"Blood pressure {newest_s.value:.0f}/{newest_d.value:.0f} mm Hg: hypertensive crisis range",
                "critical",
                BP_SOURCE,
                evidence[:1],
                "ACC/AHA 2017: systolic > 180 and/or diastolic > "
                "120 mm Hg is a hypertensive crisis; assess for "
                "target-organ damage (emergency) and recheck promptly.",
                override_reasons=COMMON_OVERRIDES,
                links=[("2017 ACC/AHA guideline", bp.URL)],
                outputs={"stage": "crisis"},
            )
        ]
    days = {s.when[:10] for s, _ in pairs}
    if len(pairs) < 2 or len(days) < 2 or _has(conditions, HYPERTENSION):
        return []  # staging needs >= 2 readings on >= 2 occasions; known hypertension is managed
    mean_s = sum(s.value for s, _ in pairs) / len(pairs)
    mean_d = sum(d.value for _, d in pairs) / len(pairs)
    stage = bp.stage(mean_s, mean_d)
    if stage not in ("stage-1", "stage-2"):
        return []
    return [
        Card(
            f"bp-{stage}",
            f"Average BP {mean_s:.0f}/{mean_d:.0f} mm Hg over "
            f"{len(pairs)} readings: {bp.LABELS[stage]} (ACC/AHA)",
            "warning" if stage == "stage-2" else "info",
            BP_SOURCE,
            evidence,
            "ACC/AHA 2017 on the average of >= 2 readings on >= "
            "2 occasions (last 12 months): normal < 120/80; "
            "elevated 120-129/< 80; stage 1 130-139 or 80-89; stage 2 >= 140 or >= 90 mm Hg.",
            [
                common.diagnose(
                    patient_id, "38341003", "Hypertensive disorder", [s.reference for s, _ in pairs]
                )
            ],
            override_reasons=[
                ("white-coat", "Office readings not representative (white-coat effect)"),
                *COMMON_OVERRIDES,
            ],
            links=[("2017 ACC/AHA guideline", bp.URL)],
            outputs={"stage": stage, "mean_systolic": round(mean_s, 1), "mean_diastolic": round(mean_d, 1)},
        )
    ]


def _race(patient: dict[str, Any]) -> str:
    for ext in patient.get("extension") or []:
        if str(ext.get("url", "")).endswith("us-core-race"):
            for sub in ext.get("extension") or []:
                if (sub.get("valueCoding") or {}).get("code") == "2054-5":
                    return "african-american"
    return "white"


def _smoker(observations: list[dict[str, Any]]) -> bool | None:
    for obs in sorted(observations, key=lambda o: str(o.get("effectiveDateTime", "")), reverse=True):
        if (fx.LOINC, fx.SMOKING_STATUS) in fx.codes_of(obs.get("code")):
            return any(code in CURRENT_SMOKER for _, code in fx.codes_of(obs.get("valueCodeableConcept")))
    return None


def statin_cards(
    patient_id: str,
    patient: dict[str, Any],
    observations: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    medications: list[dict[str, Any]],
    today: date,
) -> list[Card]:
    age, sex = fx.age_on(patient, today), fx.sex(patient)
    if age is None or sex is None or not 40 <= age <= 75:
        return []
    if _has(conditions, ASCVD) or _taking(medications, STATINS):
        return []  # secondary prevention or already treated: other guidance applies
    tc, hdl = fx.latest(observations, fx.CHOLESTEROL), fx.latest(observations, fx.HDL)
    systolic, smoker = fx.latest(observations, fx.SYSTOLIC), _smoker(observations)
    missing = [
        name
        for name, value in (
            ("total cholesterol", tc),
            ("HDL", hdl),
            ("systolic BP", systolic),
            ("smoking status", smoker),
        )
        if value is None
    ]
    if missing:
        return []  # the equations need every input; the lipid panel is ordered by routine screening
    assert tc and hdl and systolic and smoker is not None
    if not pce.in_range(age, tc.value, hdl.value, systolic.value):
        return []
    diabetic = bool(_has(conditions, (DIABETES_SNOMED, ("E10", "E11", "E13"))))
    treated = _taking(medications, ANTIHYPERTENSIVES)
    race = _race(patient)
    risk = pce.ten_year_risk(
        sex=sex, race=race, age=age, total_cholesterol=tc.value, hdl=hdl.value,
        systolic=systolic.value, treated=treated, smoker=smoker, diabetes=diabetic,
    )  # fmt: skip
    if risk < pce.STATIN_THRESHOLD and not diabetic:
        return []
    evidence = [
        Evidence(
            "Age / sex / race group", f"{age} / {sex} / {race}", today.isoformat(), f"Patient/{patient_id}"
        ),
        common.evidence(tc),
        common.evidence(hdl),
        common.evidence(systolic),
        Evidence("Treated for hypertension", "yes" if treated else "no"),
        Evidence("Current smoker (LOINC 72166-2)", "yes" if smoker else "no"),
        Evidence("Diabetes on problem list", "yes" if diabetic else "no"),
    ]
    return [
        Card(
            "statin-pce",
            f"10-year ASCVD risk {risk:.1%} (pooled cohort equations): consider a statin",
            "warning" if risk >= 0.2 else "info",
            PCE_SOURCE,
            evidence,
            "2013 ACC/AHA: statin for primary prevention at "
            "age 40-75 without clinical ASCVD when the 10-year "
            f"risk is >= {pce.STATIN_THRESHOLD:.1%}, or with diabetes. Risk by the pooled cohort equations "
            "(Goff 2013; white equations for races other than African American). Check LDL-C and shared "
            "decision-making before starting.",
            [
                common.prescribe(
                    patient_id,
                    "617310",
                    "atorvastatin 20 MG Oral Tablet",
                    "20 mg once daily",
                    "Primary prevention",
                )
            ],
            override_reasons=[("statin-intolerance", "Statin intolerance"), *COMMON_OVERRIDES],
            links=[("Pooled cohort equations (Goff 2013)", pce.URL)],
            outputs={"risk": round(risk, 4)},
        )
    ]


def af_cards(
    patient_id: str,
    patient: dict[str, Any],
    conditions: list[dict[str, Any]],
    medications: list[dict[str, Any]],
    today: date,
) -> list[Card]:
    af = _has(conditions, ATRIAL_FIBRILLATION)
    age, sex = fx.age_on(patient, today), fx.sex(patient)
    if not af or age is None or sex is None or _taking(medications, ANTICOAGULANTS):
        return []
    factors = chads.Factors(
        age=age,
        female=sex == "female",
        heart_failure=bool(_has(conditions, HEART_FAILURE)),
        hypertension=bool(_has(conditions, HYPERTENSION)),
        diabetes=bool(_has(conditions, (DIABETES_SNOMED, ("E10", "E11", "E13")))),
        stroke_or_tia=bool(_has(conditions, STROKE_TIA)),
        vascular_disease=bool(_has(conditions, VASCULAR)),
    )
    if not chads.anticoagulation_recommended(factors):
        return []
    score = chads.score(factors)
    points = chads.points(factors)
    evidence = [Evidence("Atrial fibrillation", "active", reference=af[0])]
    evidence += [Evidence(name, f"+{p}") for name, p in points.items()]
    return [
        Card(
            "af-anticoagulation",
            f"Atrial fibrillation, CHA2DS2-VASc {score}, no anticoagulant: consider oral anticoagulation",
            "warning",
            AF_SOURCE,
            evidence,
            f"CHA2DS2-VASc = {score} ({' + '.join(f'{p} {n}' for n, p in points.items())}). "
            "2019 AHA/ACC/HRS: oral "
            "anticoagulation is recommended at >= 2 in men and "
            ">= 3 in women; weigh bleeding risk (e.g. HAS-BLED).",
            [
                common.prescribe(
                    patient_id,
                    "1364445",
                    "apixaban 5 MG Oral Tablet",
                    "5 mg twice daily",
                    "Stroke prevention in AF",
                )
            ],
            override_reasons=[("bleeding-risk", "Bleeding risk outweighs benefit"), *COMMON_OVERRIDES],
            links=[("2019 AHA/ACC/HRS AF focused update", chads.URL)],
            outputs={"score": score},
        )
    ]


def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
    patient = data.resource("patient") or {}
    observations = data.resources("observations")
    conditions = data.resources("conditions")
    medications = data.resources("medications")
    pid = request.patient_id
    return [
        *bp_cards(pid, observations, conditions, today),
        *statin_cards(pid, patient, observations, conditions, medications, today),
        *af_cards(pid, patient, conditions, medications, today),
    ]


def service() -> Service:
    return Service(
        ID,
        "patient-view",
        "Cardiovascular prevention: blood pressure, statin, anticoagulation",
        "Stages blood pressure (ACC/AHA 2017), suggests a statin from the 10-year ASCVD risk (pooled cohort "
        "equations) and anticoagulation in atrial fibrillation from CHA2DS2-VASc",
        PREFETCH,
        handle,
    )
