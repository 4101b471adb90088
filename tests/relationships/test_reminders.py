"""`flask partners remind`: check-in due and partner-at-risk e-mails to the owner on staff, once."""

from datetime import timedelta

from sqlalchemy import select

from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.notifications.models import OutboxMessage
from portal.relationships.models import RelationshipOwner
from tests import factories
from tests.clock import practice_today


def own(db, org, user):
    db.session.add(RelationshipOwner(organization_id=org.id, owner_id=user.id))
    db.session.flush()


def test_check_in_due_goes_to_the_owner_once(app, db, org_a, org_b):
    owner = factories.make_user(Role.STAFF)
    own(db, org_a, owner)
    own(db, org_b, owner)
    today = practice_today()
    org_a.next_check_in = today - timedelta(days=1)
    org_b.next_check_in = today + timedelta(days=3)  # not yet
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["partners", "remind"])
    assert "1 check-in reminder(s)" in result.output, result.output
    (message,) = db.session.scalars(select(OutboxMessage).where(OutboxMessage.template == "checkin_due")).all()
    assert message.recipient == owner.email
    assert message.context["organization"] == org_a.name
    assert message.context["link"].endswith(f"/relationships/organizations/{org_a.public_id}")
    result = runner.invoke(args=["partners", "remind"])
    assert "0 check-in reminder(s)" in result.output
    assert len(db.session.scalars(select(OutboxMessage).where(OutboxMessage.template == "checkin_due")).all()) == 1


def test_partner_at_risk_when_referrals_halve(app, db, org_a):
    owner = factories.make_user(Role.STAFF)
    own(db, org_a, owner)
    clinician = factories.make_user(Role.PARTNER, org_a)
    for days in (5, 100, 110, 120, 130):  # 1 in the last 90 days, 4 in the 90 before
        factories.make_referral(org_a, clinician, submitted_at=now_utc() - timedelta(days=days))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["partners", "remind"])
    assert "1 at-risk warning(s)" in result.output
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.template == "partner_at_risk"))
    assert (message.context["previous"], message.context["current"]) == (4, 1)


def test_unowned_partners_are_reported(app, db, org_a):
    org_a.next_check_in = practice_today()
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["partners", "remind"])
    assert "Need an owner on staff first: Org A Orthopedics" in result.output
