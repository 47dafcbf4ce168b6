"""Message structures (MSH-9.3) implied by type and trigger, for senders that leave MSH-9.3 out.

Versions before 2.3.1 had no MSH-9.3, and many senders still omit it. The table is the
HL7 v2.5 event -> structure table (the one that changed least across 2.3-2.8) for the message
types this server takes; an unknown pair falls back to ``TYPE_TRIGGER``.
"""

from __future__ import annotations

_SHARED: dict[str, tuple[str, ...]] = {
    "ADT_A01": ("ADT^A01", "ADT^A04", "ADT^A08", "ADT^A13"),
    "ADT_A02": ("ADT^A02",),
    "ADT_A03": ("ADT^A03",),
    "ADT_A05": ("ADT^A05", "ADT^A14", "ADT^A28", "ADT^A31"),
    "ADT_A06": ("ADT^A06", "ADT^A07"),
    "ADT_A09": ("ADT^A09", "ADT^A10", "ADT^A11"),
    "ADT_A12": ("ADT^A12",),
    "ADT_A15": ("ADT^A15",),
    "ADT_A16": ("ADT^A16",),
    "ADT_A17": ("ADT^A17",),
    "ADT_A21": ("ADT^A21", "ADT^A22", "ADT^A23", "ADT^A25", "ADT^A26", "ADT^A27", "ADT^A29", "ADT^A32"),
    "ADT_A30": ("ADT^A34", "ADT^A35", "ADT^A36", "ADT^A46", "ADT^A47", "ADT^A48", "ADT^A49"),
    "ADT_A38": ("ADT^A38",),
    "ADT_A39": ("ADT^A39", "ADT^A40", "ADT^A41", "ADT^A42"),
    "ADT_A43": ("ADT^A43", "ADT^A44"),
    "ADT_A45": ("ADT^A45",),
    "ADT_A50": ("ADT^A50", "ADT^A51"),
    "ADT_A52": ("ADT^A52", "ADT^A53"),
    "ADT_A54": ("ADT^A54", "ADT^A55"),
    "ADT_A60": ("ADT^A60",),
    "ADT_A61": ("ADT^A61", "ADT^A62"),
    "ORU_R01": ("ORU^R01",),
    "ORU_R30": ("ORU^R30", "ORU^R31", "ORU^R32"),
    "ORM_O01": ("ORM^O01",),
    "OML_O21": ("OML^O21",),
    "OML_O33": ("OML^O33",),
    "OML_O35": ("OML^O35",),
    "ORL_O22": ("ORL^O22",),
    "VXU_V04": ("VXU^V04",),
    "SIU_S12": tuple(f"SIU^S{n}" for n in range(12, 27)),
    "MDM_T01": ("MDM^T01", "MDM^T03", "MDM^T05", "MDM^T07", "MDM^T09", "MDM^T11"),
    "MDM_T02": ("MDM^T02", "MDM^T04", "MDM^T06", "MDM^T08", "MDM^T10"),
    "RDE_O11": ("RDE^O11", "RDE^O25"),
    "ORR_O02": ("ORR^O02",),
    "ACK": ("ACK^",),
}

STRUCTURES: dict[str, str] = {pair: structure for structure, pairs in _SHARED.items() for pair in pairs}


def structure_for(message_type: str, trigger: str) -> str:
    """The structure id for ``message_type^trigger`` (``ADT``, ``A04`` -> ``ADT_A01``)."""
    found = STRUCTURES.get(f"{message_type}^{trigger}")
    if found:
        return found
    if not trigger:
        return message_type
    return f"{message_type}_{trigger}"
