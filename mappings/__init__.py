"""Pure HL7 v2 -> FHIR R4 Bundle mappings; imports nothing of the server."""
