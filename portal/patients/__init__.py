"""Patients: identity and contact details, every identifying field encrypted at rest."""
