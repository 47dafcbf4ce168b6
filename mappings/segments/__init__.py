"""One function per HL7 v2 segment, each producing (or filling) FHIR resources in a Context."""
