"""HL7 v2 over MLLP: framing, parsing, durable intake and ACKs (see issue "HL7 v2 MLLP listener")."""
