"""FHIR R4 API for partner EHRs, authorized by SMART Backend Services (see docs/architecture.md, FHIR API)."""
