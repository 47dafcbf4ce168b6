"""Business operations shared by every entry point (REST, bundles, HL7, CDS)."""
