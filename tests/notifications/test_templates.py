"""Every e-mail template renders, is known here and in the catalog, and never carries PHI."""

import re
from datetime import date

import pytest

from portal.notifications.catalog import KINDS
from portal.notifications.rendering import build_message, render, template_names

LINK = "http://127.0.0.1:5000/referrals/6f0c1a52-6c59-4a3e-9d8e-1c0f5a0b7e21"

# One representative context per template: the keys the rest of the portal enqueues.
CONTEXTS = {
    "invite": {"link": LINK, "inviter": "Avery Admin", "organization": "Lakeside Orthopedics", "hours": 72},
    "invite_sso": {
        "link": LINK,
        "inviter": "Avery Admin",
        "organization": "Lakeside Orthopedics",
        "provider": "Lakeside Okta",
    },
    "password_reset": {"link": LINK, "minutes": 60},
    "invite_conflict": {"inviter": "Pat Partner", "organization": "Lakeside Orthopedics", "link": LINK},
    "patient_consent_request": {"link": LINK, "days": 7},
    "patient_consent_copy": {"link": LINK},
    "mfa_reset": {},
    "mfa_changed": {"when": "26 Nov 2026 09:14 UTC", "change": "enrolled"},
    "new_sign_in": {"when": "26 Nov 2026 09:14 UTC", "ip": "203.0.113.9"},
    "password_changed": {"when": "26 Nov 2026 09:14 UTC"},
    "referral_thanks": {"reference": "RB-7KQ2M9XA", "link": LINK, "clinician_name": "Dr. Lee Ortho"},
    "referral_welcome": {"reference": "RB-7KQ2M9XA", "link": LINK, "clinician_name": "Dr. Lee Ortho"},
    "intake_new_referral": {"reference": "RB-7KQ2M9XA", "link": LINK, "urgency": "Urgent"},
    "referral_status_changed": {"reference": "RB-7KQ2M9XA", "link": LINK, "status_label": "First visit scheduled"},
    "update_available": {"reference": "RB-7KQ2M9XA", "link": LINK},
    "consent_expiring": {"count": 3, "link": LINK},
    "checkin_due": {"organization": "Lakeside Orthopedics", "link": LINK},
    "partner_at_risk": {"organization": "Lakeside Orthopedics", "link": LINK, "previous": 12, "current": 5},
    "monthly_digest": {
        "organization": "Lakeside Orthopedics",
        "month": "October 2026",
        "referrals": 23,
        "seen": 19,
        "mcid_rate": 71,
    },
    "digest": {
        "period": "daily",
        "items": [
            {"subject": "Referral RB-7KQ2M9XA: Scheduled", "text": "Your referral is now scheduled.", "link": LINK},
            {"subject": "Check-in due: Lakeside Orthopedics", "link": None},  # queued before digests kept text
        ],
    },
}


def test_templates_on_disk_are_exactly_the_known_ones():
    assert template_names() == set(CONTEXTS), "a new e-mail template needs a context here (and a catalog entry)"
    assert set(KINDS) == set(CONTEXTS)


@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_template_renders_text_html_and_a_one_line_subject(app, template):
    with app.app_context():
        out = render(template, CONTEXTS[template])
    assert out.subject and "\n" not in out.subject and "{" not in out.subject
    assert out.text.strip() and out.html.lstrip().startswith("<!doctype html>")
    for key, value in CONTEXTS[template].items():
        if key not in ("items", "change"):  # "change" is a code, written out in words
            assert str(value).lower() in out.text.lower(), f"{template}: {key} missing from the text body"
    if "link" in CONTEXTS[template]:
        assert f'href="{LINK}"' in out.html
    # Security notices cannot be turned off; the others say where to choose.
    assert ("/account/notifications" in out.text) is (not KINDS[template].is_security or template == "digest")


@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_each_template_declares_the_keys_it_needs(app, template):
    """The catalog's keys are exactly what the representative context gives."""
    assert set(KINDS[template].keys) == set(CONTEXTS[template])


@pytest.mark.parametrize(
    "change,words",
    [("enrolled", "turned on"), ("turned_off", "turned off"), ("recovery_code_used", "recovery codes was used")],
)
def test_mfa_changes_are_written_out(app, change, words):
    with app.app_context():
        out = render("mfa_changed", {"when": "today", "change": change})
    assert words in out.text and words in out.html


def test_html_is_escaped(app):
    with app.app_context():
        out = render("checkin_due", {"organization": "<b>Acme & Sons</b>", "link": LINK})
    assert "&lt;b&gt;Acme &amp; Sons&lt;/b&gt;" in out.html
    assert "<b>Acme & Sons</b>" in out.text  # plain text is not HTML


def test_subject_cannot_inject_headers(app):
    with app.app_context():
        msg = build_message(
            message_id="x",
            recipient="a@example.com",
            template="checkin_due",
            context={"organization": "Acme\r\nBcc: evil@example.com", "link": LINK},
        )
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"]


def test_suppressed_small_numbers_read_as_counts_not_percentages(app):
    with app.app_context():
        out = render("monthly_digest", {**CONTEXTS["monthly_digest"], "seen": "<11", "mcid_rate": "<11"})
    rate = next(line for line in out.text.splitlines() if line.startswith("Meaningful improvement"))
    assert rate.endswith("fewer than 11 patients (not shown, to protect their privacy)")
    assert "<11" not in out.text and "&lt;11" not in out.html and "%" not in rate
    assert "Referrals sent:                       23" in out.text  # a shown figure stays a figure


# --- no PHI ------------------------------------------------------------------------------


def demo_contexts() -> dict[str, dict]:
    """Contexts built from the demo data (organizations, clinicians, staff) as the portal enqueues them."""
    from portal.demo import ORGANIZATIONS, USERS

    org = ORGANIZATIONS[0][0]
    clinician = next(name for _, name, role, _, _ in USERS if role.is_partner)
    staff = next(name for _, name, role, _, _ in USERS if not role.is_partner)
    ctx = {k: dict(v) for k, v in CONTEXTS.items()}
    for values in ctx.values():
        for key in values:
            if key in ("organization",):
                values[key] = org
            elif key == "clinician_name":
                values[key] = clinician
            elif key == "inviter":
                values[key] = staff
    return ctx


def phi_strings(patient) -> list[str]:
    """Every way a demo patient's PHI could be written into a message."""
    birth: date = patient.birth_date
    values = [
        f"{patient.given_name} {patient.family_name}",
        f"{patient.family_name}, {patient.given_name}",
        patient.family_name,
        patient.email,
        patient.phone,
        re.sub(r"\D", "", patient.phone),
        birth.isoformat(),
        birth.strftime("%m/%d/%Y"),
        f"{birth.month}/{birth.day}/{birth.year}",
        birth.strftime("%d %b %Y"),
        birth.strftime("%B %d, %Y").replace(" 0", " "),
        patient.address["line1"],
    ]
    if patient.insurance_member_id:
        values.append(patient.insurance_member_id)
    return values


def test_no_demo_patient_phi_in_any_message(app):
    pytest.importorskip("portal.patients.demo", reason="demo patients not written yet")
    from portal.patients.demo import demo_patient

    with app.app_context():
        phi = [phi_strings(demo_patient(i)) for i in range(40)]
        for template, context in demo_contexts().items():
            msg = build_message(
                message_id="00000000-0000-4000-8000-000000000000",
                recipient="partner@lakeside-ortho.example",
                template=template,
                context=context,
            )
            parts = [str(v) for _, v in msg.items()]
            parts += [msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()]
            haystack = "\n".join(parts).lower()
            for strings in phi:
                for value in strings:
                    assert value.lower() not in haystack, f"{template} carries a demo patient's PHI"


def test_the_phi_check_would_catch_a_leak(app):
    """Guard against a vacuous check: PHI smuggled into a context is found."""
    pytest.importorskip("portal.patients.demo", reason="demo patients not written yet")
    from portal.patients.demo import demo_patient

    with app.app_context():
        patient = demo_patient(2)
        strings = phi_strings(patient)
        msg = build_message(
            message_id="x",
            recipient="a@example.com",
            template="checkin_due",
            context={"organization": f"{patient.given_name} {patient.family_name}", "link": LINK},
        )
    haystack = (str(msg["Subject"]) + msg.get_body(("plain",)).get_content()).lower()
    assert any(value.lower() in haystack for value in strings)
