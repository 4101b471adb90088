"""Staff publish events and resources; partners see them and RSVP; attendance becomes a touchpoint."""

import io
from datetime import timedelta

from sqlalchemy import select

from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.relationships.models import Event, EventKind, Resource, Rsvp, RsvpResponse, Touchpoint, TouchpointKind
from tests import factories
from tests.conftest import sign_in


def make_event(published=True, days=7, kind=EventKind.WEBINAR, title="Return to sport"):
    from portal.extensions import db

    event = Event(title=title, kind=kind, starts_at=now_utc() + timedelta(days=days), is_published=published)
    db.session.add(event)
    db.session.flush()
    return event


def test_staff_publish_an_event_in_practice_time(client, login_as, db, app):
    login_as("staff")
    response = client.post(
        "/relationships/events",
        data={
            "title": "Knee pain lunch-and-learn",
            "kind": "lunch_and_learn",
            "starts_at": "2030-03-05T12:30",
            "location": "200 Regent St",
            "is_published": "y",
        },
    )
    assert response.status_code == 302
    event = db.session.scalar(select(Event))
    assert event.is_published and event.kind is EventKind.LUNCH_AND_LEARN
    # 12:30 in America/Chicago (CST, UTC-6) is 18:30 UTC.
    assert event.starts_at.isoformat() == "2030-03-05T18:30:00+00:00"


def test_partner_sees_published_events_and_rsvps(client, login_as, db):
    published, draft = make_event(), make_event(published=False, title="Secret draft")
    partner = login_as("partner")
    html = client.get("/partner/learning/").get_data(as_text=True)
    assert "Return to sport" in html and "Secret draft" not in html
    assert (
        client.post(f"/partner/learning/events/{published.public_id}/rsvp", data={"response": "going"}).status_code
        == 302
    )
    rsvp = db.session.scalar(select(Rsvp))
    assert (rsvp.user_id, rsvp.organization_id, rsvp.response) == (
        partner.id,
        partner.organization_id,
        RsvpResponse.GOING,
    )
    # Changing one's mind updates the same answer.
    client.post(f"/partner/learning/events/{published.public_id}/rsvp", data={"response": "not_going"})
    db.session.refresh(rsvp)
    assert rsvp.response is RsvpResponse.NOT_GOING
    assert len(db.session.scalars(select(Rsvp)).all()) == 1
    # A draft does not exist for partners.
    assert (
        client.post(f"/partner/learning/events/{draft.public_id}/rsvp", data={"response": "going"}).status_code == 404
    )


def test_past_events_take_no_rsvp(client, login_as, db):
    past = make_event(days=-3)
    login_as("partner")
    client.post(f"/partner/learning/events/{past.public_id}/rsvp", data={"response": "going"})
    assert db.session.scalar(select(Rsvp)) is None


def test_attendance_becomes_one_touchpoint_per_organization(client, login_as, db, org_a):
    event = make_event(kind=EventKind.WEBINAR)
    people = [factories.make_user(Role.PARTNER, org_a) for _ in range(2)]
    rsvps = [
        Rsvp(event_id=event.id, user_id=p.id, organization_id=org_a.id, response=RsvpResponse.GOING) for p in people
    ]
    db.session.add_all(rsvps)
    db.session.commit()
    login_as("staff")
    for rsvp in rsvps:
        assert (
            client.post(f"/relationships/events/{event.public_id}/rsvps/{rsvp.public_id}/attended").status_code == 302
        )
    touchpoints = db.session.scalars(select(Touchpoint).where(Touchpoint.organization_id == org_a.id)).all()
    assert len(touchpoints) == 1
    assert touchpoints[0].kind is TouchpointKind.WEBINAR and touchpoints[0].event_id == event.id
    assert all(r.attended_at is not None for r in db.session.scalars(select(Rsvp)))


def test_resources_pdf_only_and_partners_download_published_ones(client, login_as, db):
    login_as("staff")
    bad = client.post(
        "/relationships/resources",
        data={"title": "Not a PDF", "file": (io.BytesIO(b"MZ\x90\x00"), "x.exe")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "must be PDF" in bad.get_data(as_text=True)
    ok = client.post(
        "/relationships/resources",
        data={"title": "Knee handout", "is_published": "y", "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "../knee.pdf")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    resource = db.session.scalar(select(Resource))
    assert resource.filename == "knee.pdf"
    hidden = Resource(title="Draft", filename="d.pdf", content_type="application/pdf", size=9, data=b"%PDF-1.4\n")
    db.session.add(hidden)
    db.session.commit()
    client.post("/auth/logout")
    partner = factories.make_user(Role.PARTNER)
    db.session.commit()
    sign_in(client, partner.email)
    download = client.get(f"/partner/learning/resources/{resource.public_id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert "attachment" in download.headers["Content-Disposition"]
    assert client.get(f"/partner/learning/resources/{hidden.public_id}").status_code == 404
