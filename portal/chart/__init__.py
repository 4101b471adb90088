"""The patient's chart: the pages that show everything about one patient.

Staff see the work-up (referrals, consents, progress updates, outcome scores) with the forms
to act on it, and the patient's accounting of disclosures; a referring partner sees only what
today's consent lets their organization see. Each part comes from its own feature (consent,
progress, outcomes, referrals), so this package sits above them all and nothing imports it.
"""
