"""FHIR R4 (4.0.1) conformance as data, plus pure builders over it.

``definitions/`` holds the official HL7 artifacts (search parameters, the Patient compartment, the
R4 JSON schema, the resource-type list); :mod:`conformance.registry` loads them once and
:mod:`conformance.capability` builds the CapabilityStatement from what the server implements.
Nothing here imports the server, so REST, HL7 and CDS code share one source of truth.
"""
