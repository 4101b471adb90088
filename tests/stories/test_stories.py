"""Success stories: sanitized Markdown, consent-gated publication, revocation hides at once, de-identification."""

from datetime import date

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.consent.models import Category, ConsentStatus
from portal.stories.models import Story, StoryState
from portal.stories.rendering import render_markdown
from tests import factories
from tests.consent.helpers import add_consent

BODY = "Six weeks of work and **back on the trail**.\n\n- hiking 10 km\n- no pain on stairs"


@pytest.fixture
def referral(db, org_a):
    patient = factories.make_patient("Okonkwo", date(1958, 3, 14), given_name="Margaret", phone="(608) 555-0142")
    patient.email = "margaret.okonkwo@example.org"
    patient.address = {"line1": "4821 Monona Dr", "line2": None, "city": "Madison", "postal_code": "53703"}
    return factories.make_referral(org_a, patient=patient)


def _write(client, referral, **data):
    form = {
        "title": "Back on the trail",
        "condition": "knee",
        "highlight": "LEFS 31 -> 68 in 10 weeks",
        "body": BODY,
        **data,
    }
    response = client.post(f"/staff/patients/{referral.patient.public_id}/stories/new", data=form)
    assert response.status_code == 302, response.text
    from portal.extensions import db

    return db.session.scalars(select(Story).order_by(Story.id.desc())).first()


def test_markdown_is_sanitized():
    html = str(
        render_markdown(
            "# Title\n\n<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://e.org)"
            "\n\n<img src=x onerror=alert(1)>"
        )
    )
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html  # shown as text, never run
    assert "<h2>Title</h2>" in html and 'href="https://e.org"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_invalid_story_is_422(client, login_as, referral):
    login_as("staff")
    response = client.post(f"/staff/patients/{referral.patient.public_id}/stories/new", data={"title": ""})
    assert response.status_code == 422 and "Please correct the highlighted fields" in response.text


def test_publishing_without_consent_is_refused(client, login_as, referral, db):
    login_as("staff")
    story = _write(client, referral)
    add_consent(referral, categories=(Category.OUTCOME_SCORES,))  # not publication
    response = client.post(f"/staff/stories/{story.public_id}/publish")
    assert response.status_code == 422 and "no consent in effect that allows publishing" in response.text
    db.session.refresh(story)
    assert story.state is StoryState.DRAFT


def test_publish_then_revoke_hides_at_once(client, login_as, referral, db, org_b):
    staff = login_as("staff")
    story = _write(client, referral)
    consent = add_consent(referral, categories=(Category.STORY_PUBLICATION,))
    assert client.post(f"/staff/stories/{story.public_id}/publish").status_code == 302
    client.post("/auth/logout")
    login_as("partner", organization=org_b)
    assert "Back on the trail" in client.get("/partner/stories").text
    assert client.get(f"/partner/stories/{story.public_id}").status_code == 200
    add_consent(
        referral,
        categories=(Category.STORY_PUBLICATION,),
        key=consent.consent_key,
        version=2,
        status=ConsentStatus.REVOKED,
        recorder=staff,
    )
    assert "Back on the trail" not in client.get("/partner/stories").text
    assert client.get(f"/partner/stories/{story.public_id}").status_code == 404
    db.session.refresh(story)
    assert story.state is StoryState.PUBLISHED  # the intent stays; visibility is the consent's


@pytest.mark.parametrize(
    "text,kind",
    [
        ("Margaret is hiking again.", "the patient's first name"),
        ("The OKONKWO family thanks the team.", "the patient's last name"),
        ("Born on March 14, 1958, she", "the patient's date of birth"),
        ("born 3/14/1958", "the patient's date of birth"),
        ("Call her at 608.555.0142", "the patient's phone number"),
        ("Write to Margaret.Okonkwo@example.org", "the patient's e-mail address"),
        ("She lives on Monona Dr near the lake.", "the patient's street address"),
    ],
)
def test_deidentification_warns_and_names_only_the_kind(client, login_as, referral, db, text, kind):
    login_as("staff")
    story = _write(client, referral, body=BODY + "\n\n" + text)
    add_consent(referral, categories=(Category.STORY_PUBLICATION,))
    response = client.post(f"/staff/stories/{story.public_id}/publish")
    assert response.status_code == 422 and kind.replace("'", "&#39;") in response.text
    assert "publish anyway" in response.text
    db.session.refresh(story)
    assert story.state is StoryState.DRAFT
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_id == str(story.public_id))).all()
    assert all("Okonkwo" not in str(e.detail) and "0142" not in str(e.detail) for e in events)
    acknowledged = client.post(f"/staff/stories/{story.public_id}/publish", data={"acknowledge": "y"})
    assert acknowledged.status_code == 302
    db.session.refresh(story)
    assert story.state is StoryState.PUBLISHED


def test_clean_story_has_no_warnings(client, login_as, referral):
    from portal.stories.deidentify import findings

    assert (
        findings(referral.patient, "Back on the trail", "LEFS 31 -> 68", BODY + " Mary went to Madison in 2024.") == []
    )


def test_partner_browse_filter_and_highlight(client, login_as, referral, db, org_a, org_b):
    staff = factories.make_user("staff")
    add_consent(referral, categories=(Category.STORY_PUBLICATION,))
    other = factories.make_referral(org_b)
    add_consent(other, categories=(Category.STORY_PUBLICATION,))
    for r, title, condition in ((referral, "Knee story", "knee"), (other, "Back story", "back")):
        story = Story(
            patient_id=r.patient_id,
            author_id=staff.id,
            condition=condition,
            state=StoryState.PUBLISHED,
            published_at=r.submitted_at,
        )
        story.title, story.highlight, story.body_markdown = title, "ODI 48 -> 12", "Better."
        db.session.add(story)
    draft = Story(patient_id=other.patient_id, author_id=staff.id, condition="back", state=StoryState.DRAFT)
    draft.title, draft.highlight, draft.body_markdown = "Draft story", "x", "y"
    db.session.add(draft)
    db.session.flush()
    login_as("partner")  # org A referred the knee patient
    page = client.get("/partner/stories").text
    assert "Knee story" in page and "Back story" in page and "Draft story" not in page
    assert page.index("Knee story") < page.index("Back story") and page.count("Referred by your organization") == 1
    filtered = client.get("/partner/stories?condition=back").text
    assert "Back story" in filtered and "Knee story" not in filtered
    assert client.get(f"/partner/stories/{draft.public_id}").status_code == 404


def test_withdraw(client, login_as, referral, db):
    login_as("staff")
    story = _write(client, referral)
    add_consent(referral, categories=(Category.STORY_PUBLICATION,))
    client.post(f"/staff/stories/{story.public_id}/publish")
    assert client.post(f"/staff/stories/{story.public_id}/withdraw").status_code == 302
    db.session.refresh(story)
    assert story.state is StoryState.WITHDRAWN
    assert "Withdrawn" in client.get("/staff/stories").text
