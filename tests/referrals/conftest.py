import io

import pytest

from tests.factories import PDF_BYTES

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def valid_form(**overrides) -> dict:
    data = {
        "given_name": "Zoë",
        "family_name": "O’Brien-Núñez",
        "birth_date": "1984-07-19",
        "sex": "female",
        "phone": "(608) 555-0199",
        "email": "zoe.obrien@example.com",
        "address_line1": "12 Lake St",
        "city": "Madison",
        "postal_code": "53703",
        "us_state": "WI",
        "reason": "Left knee pain for 3 months, worse on stairs.",
        "diagnosis": "Patellofemoral pain",
        "icd10_codes": "m22.2x2, M25.562",
        "requested_service": "evaluate_and_treat",
        "urgency": "routine",
        "visit_preference": "either",
        "insurance_payer": "Acme Health",
        "insurance_member_id": "XZ123456",
        "clinician_npi": "",
        "notes": "",
    }
    data.update(overrides)
    return data


def upload(content: bytes = PDF_BYTES, name: str = "knee-xray.pdf"):
    return (io.BytesIO(content), name)


@pytest.fixture
def submit(client):
    """POST the new-referral form as the signed-in partner; files as (bytes, name) pairs."""

    def _submit(files=(), clinician=None, **overrides):
        from flask_login import current_user  # noqa: F401  (documentation: the form defaults to the user)

        data = valid_form(**overrides)
        if clinician is not None:
            data["clinician"] = str(clinician.public_id)
        data["attachments"] = [upload(*f) if isinstance(f, tuple) else upload(f) for f in files]
        return client.post("/partner/referrals/new", data=data, content_type="multipart/form-data")

    return _submit
