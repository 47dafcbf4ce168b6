"""Metformin and renal function, from the FDA's 2016 labelling change (eGFR, not creatinine).

Contraindicated below eGFR 30; starting it is not recommended at 30-44; at 45 or more no
renal restriction (mL/min/1.73 m2).
"""

from __future__ import annotations

SOURCE = "FDA Drug Safety Communication: metformin in reduced kidney function (2016)"
URL = (
    "https://www.fda.gov/drugs/drug-safety-and-availability/fda-drug-safety-communication-fda-revises-"
    "warnings-regarding-use-diabetes-medicine-metformin-certain"
)
CONTRAINDICATED_BELOW = 30.0
NO_INITIATION_BELOW = 45.0


def check(egfr: float) -> str:
    """contraindicated | do-not-initiate | ok."""
    if egfr < CONTRAINDICATED_BELOW:
        return "contraindicated"
    if egfr < NO_INITIATION_BELOW:
        return "do-not-initiate"
    return "ok"
