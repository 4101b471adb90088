"""Every route, as every signed-in role, answers junk input with a 4xx or a success, never a 5xx.

Junk: over-long text, control characters, right-to-left and non-ASCII digits, impossible
dates, negative and huge numbers, ids that are not UUIDs, in every field a form might have.
"""

from urllib.parse import urlencode

import pytest

from tests.conftest import sign_in
from tests.test_access_matrix import MATRIX, world  # noqa: F401  (world is a fixture)

JUNK_VALUES = ["x" * 20_000, "\x00\x07\u202e٣٤\ufeff", "2026-02-30", "-1", "9" * 40, "not-a-uuid", "<script>"]
FIELDS = [
    "name",
    "email",
    "full_name",
    "role",
    "organization",
    "clinician",
    "kind",
    "us_state",
    "npi",
    "given_name",
    "family_name",
    "birth_date",
    "phone",
    "reason",
    "icd10_codes",
    "urgency",
    "visit_preference",
    "requested_service",
    "note",
    "target",
    "version",
    "first_visit_at",
    "appointment_mode",
    "decision",
    "categories",
    "effective_on",
    "expires_on",
    "method",
    "witness",
    "referral",
    "visit_date",
    "category",
    "body",
    "action",
    "instrument",
    "phase",
    "score",
    "measured_on",
    "visits",
    "title",
    "condition",
    "highlight",
    "code",
    "mcid",
    "status",
    "owner",
    "next_check_in",
    "occurred_on",
    "starts_at",
    "response",
    "new_password",
    "confirm",
    "current_password",
    "password",
    "code_or_recovery",
    "issuer",
    "client_id",
    "scopes",
    "jwks",
    "_count",
    "_lastUpdated",
    "since",
    "until",
    "start",
    "end",
    "month",
    "format",
    "sort",
    "q",
]


@pytest.mark.parametrize("junk", JUNK_VALUES, ids=["long", "control", "date", "negative", "huge", "uuid", "markup"])
@pytest.mark.parametrize("role", ["partner_b", "partner_admin_a", "staff", "admin"])
def test_no_route_answers_junk_with_a_server_error(client, world, role, junk):  # noqa: F811
    users, ids = world
    assert sign_in(client, users[role].email).status_code == 302
    payload = dict.fromkeys(FIELDS, junk)
    failures = []
    for endpoint, (method, path, _) in sorted(MATRIX.items()):
        if endpoint in ("auth.logout", "static"):
            continue
        url = path.format(**ids)
        response = (
            client.post(url, data=payload)
            if method == "POST"
            else client.get(url + ("&" if "?" in url else "?") + urlencode(payload))
        )
        if response.status_code >= 500:
            failures.append(f"{method} {url}: {response.status_code}")
    assert failures == []
