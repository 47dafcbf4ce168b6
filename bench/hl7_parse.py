"""Parse time of the lean HL7 v2 parser against hl7apy, in one process, on the same messages.

Run: ``.venv/bin/python bench/hl7_parse.py [--seconds 2]``. Two messages: an ADT^A01 (MSH, EVN,
PID, PV1, NK1, AL1; 6 segments) and an ORU^R01 with 10 OBX. For each parser the figure is
the median of 5 timed rounds of ``parse`` plus reading the values a mapping reads (PID-3,
PID-5, every OBX-3/OBX-5), so the lazy parser is not credited for work it defers. A second
table times parsing plus mapping to the transaction Bundle (``mappings.to_bundle``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mappings import to_bundle
from mappings.message import parse

ADT_A01 = (
    "MSH|^~\\&|EPICADT|GHH^1.2.840.114350.1.13^ISO|LABADT|GHH|20240312083015+0100||ADT^A01^ADT_A01"
    "|MSG00001|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
    "EVN|A01|20240312083000+0100|||JSMITH^Smith^John\r"
    "PID|1||PATID1234^^^GHH^MR~123-45-6789^^^USSSA^SS||Everyman^Adam^A^III^^^L||19610615|M||2106-3"
    "|2222 Home Street^^Greensboro^NC^27401-1020^USA^H||(555)555-2004^PRN^PH|||S||PATID12345001^2^M10\r"
    "PV1|1|I|2000^2012^01^GHH||||004777^Attend^Aaron^A^^^MD|||SUR||||ADM|A0||||V100001^^^GHH^VN"
    "|||||||||||||||||||||||||20240312083000+0100\r"
    "NK1|1|Everyman^Eve^E|SPO^Spouse^HL70063||(555)555-2005\r"
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\r"
)

ORU_R01 = (
    "MSH|^~\\&|LABSYS|GHH LAB|EHR|GHH|20240312101500||ORU^R01^ORU_R01|LAB00042|P|2.5.1|||AL|NE\r"
    "PID|1||PATID1234^^^GHH^MR||Everyman^Adam^A||19610615|M\r"
    "OBR|1|ORD448811^EPIC|LAB99001^LABSYS|24331-1^Lipid panel^LN|||20240312080000|||||||||004777^Attend^Aaron"
    "||||||20240312101400|||F\r"
    + "".join(
        f"OBX|{i}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|{low}-{high}|{flag}|||F|||20240312093000\r"
        for i, (code, name, value, unit, low, high, flag) in enumerate(
            [
                ("2093-3", "Cholesterol", "212", "mg/dL", "0", "200", "H"),
                ("2571-8", "Triglyceride", "150", "mg/dL", "0", "150", "N"),
                ("2085-9", "HDL", "45", "mg/dL", "40", "60", "N"),
                ("13457-7", "LDL calc", "137", "mg/dL", "0", "130", "H"),
                ("2345-7", "Glucose", "98", "mg/dL", "70", "99", "N"),
                ("2160-0", "Creatinine", "1.1", "mg/dL", "0.7", "1.3", "N"),
                ("2951-2", "Sodium", "139", "mmol/L", "136", "145", "N"),
                ("2823-3", "Potassium", "4.2", "mmol/L", "3.5", "5.1", "N"),
                ("2075-0", "Chloride", "101", "mmol/L", "98", "107", "N"),
                ("2028-9", "CO2", "24", "mmol/L", "22", "29", "N"),
            ],
            start=1,
        )
    )
)


def _lean(text: str) -> Callable[[], object]:
    data = text.encode()

    def run() -> object:
        msg = parse(data)
        pid = msg.segment("PID")
        assert pid is not None
        ids = [(f.component(1), f.component(4)) for f in pid.repetitions(3)]
        values = [(o.get(3), o.get(5)) for o in msg.segments("OBX")]
        return ids, pid.get(5), values

    return run


def _hl7apy(text: str) -> Callable[[], object]:
    from hl7apy.parser import parse_message

    def run() -> object:
        msg = parse_message(text, find_groups=False)
        pid = msg.pid
        ids = [(r.cx_1.value, r.cx_4.value) for r in pid.pid_3]
        values = (
            [(o.obx_3.value, o.obx_5.value) for o in msg.children.get("OBX")] if text.count("OBX") else []
        )
        return ids, pid.pid_5.value, values

    return run


def _mapped(text: str) -> Callable[[], object]:
    data = text.encode()

    def run() -> object:
        return to_bundle(parse(data))

    return run


def _time(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over 5 rounds of ``seconds / 5`` each."""
    fn()
    rounds = []
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 5:
                break
        rounds.append(elapsed / n)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per parser and message")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    print("| message | lean parser | hl7apy | ratio |")
    print("|---|---|---|---|")
    for name, text in (("ADT^A01 (6 segments)", ADT_A01), ("ORU^R01 (10 OBX)", ORU_R01)):
        lean = _time(_lean(text), args.seconds)
        apy = _time(_hl7apy(text), args.seconds)
        print(
            f"| {name} | {lean * 1e6:.1f} µs ({1 / lean:,.0f}/s) | {apy * 1e3:.2f} ms | {apy / lean:.0f}x |"
        )
    print()
    print("| message | parse + to_bundle |")
    print("|---|---|")
    for name, text in (("ADT^A01 (6 segments)", ADT_A01), ("ORU^R01 (10 OBX)", ORU_R01)):
        mapped = _time(_mapped(text), args.seconds)
        print(f"| {name} | {mapped * 1e6:.0f} µs ({1 / mapped:,.0f}/s) |")


if __name__ == "__main__":
    main()
