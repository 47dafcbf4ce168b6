"""HL7 v2 data types -> FHIR data types: one module per family, pure functions of a Field."""
