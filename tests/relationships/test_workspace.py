"""The partner list (filters, sort, trend) and the organization page (touchpoints, check-ins, contacts)."""

import re
from datetime import date, timedelta

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.partners.models import OrganizationKind, RelationshipStatus
from portal.relationships.models import Contact, RelationshipOwner, Touchpoint, TouchpointKind
from portal.relationships.queries import ListFilters, partner_rows, referral_window_counts
from tests import factories
from tests.clock import practice_today


def referrals(org, days_ago: list[int]):
    clinician = factories.make_user(Role.PARTNER, org)
    for d in days_ago:
        factories.make_referral(org, clinician, submitted_at=now_utc() - timedelta(days=d))


def test_referral_counts_and_trend(db, org_a, org_b):
    referrals(org_a, [1, 10, 100])  # 2 now, 1 before: up
    referrals(org_b, [5, 95, 120, 150, 200])  # 1 now, 3 before (200 days is outside both windows): down
    today = practice_today()
    counts = referral_window_counts([org_a.id, org_b.id], today)
    assert counts == {org_a.id: (2, 1), org_b.id: (1, 3)}
    staff = factories.make_user(Role.STAFF)
    rows = {r.organization.id: r for r in partner_rows(ListFilters(), staff, today)}
    assert (rows[org_a.id].referrals, rows[org_a.id].trend) == (2, "up")
    assert (rows[org_b.id].referrals, rows[org_b.id].trend) == (1, "down")


def test_list_filters_and_sorts(client, login_as, db, org_a, org_b):
    me = login_as("staff")
    prospect = factories.make_organization(
        "Zephyr Wellness", kind=OrganizationKind.WELLNESS, relationship_status=RelationshipStatus.PROSPECT
    )
    db.session.add(RelationshipOwner(organization_id=org_b.id, owner_id=me.id))
    org_a.next_check_in = date(2026, 1, 5)
    prospect.next_check_in = date(2025, 12, 1)
    db.session.commit()

    def names(**args):
        html = client.get("/relationships/", query_string=args).get_data(as_text=True)
        return [n for n in ("Org A Orthopedics", "Org B Primary Care", "Zephyr Wellness") if n in html], html

    assert names()[0] == ["Org A Orthopedics", "Org B Primary Care", "Zephyr Wellness"]
    assert names(status="prospect")[0] == ["Zephyr Wellness"]
    assert names(kind="wellness")[0] == ["Zephyr Wellness"]
    assert names(owner="me")[0] == ["Org B Primary Care"]
    assert names(owner="none")[0] == ["Org A Orthopedics", "Zephyr Wellness"]
    assert names(owner="not-a-uuid")[0] == []
    assert names(q="zeph")[0] == ["Zephyr Wellness"]
    staff = factories.make_user(Role.STAFF)
    rows = partner_rows(ListFilters(sort="next_check_in"), staff, date(2026, 1, 1))
    assert [r.organization.name for r in rows][:2] == ["Zephyr Wellness", "Org A Orthopedics"]  # empty last
    rows = partner_rows(ListFilters(sort="next_check_in", descending=True), staff, date(2026, 1, 1))
    assert [r.organization.name for r in rows][:2] == ["Org A Orthopedics", "Zephyr Wellness"]
    assert rows[-1].organization.next_check_in is None
    html = names(sort="owner", dir="desc")[1]
    assert 'aria-sort="descending"' in html


def test_staff_logs_a_touchpoint_and_sets_the_next_check_in(client, login_as, db, org_b):
    me = login_as("staff")
    today = practice_today()
    response = client.post(
        f"/relationships/organizations/{org_b.public_id}/touchpoints",
        data={
            "kind": "lunch",
            "occurred_on": today.isoformat(),
            "note": "Lunch with the front desk team.",
            "next_check_in": (today + timedelta(days=30)).isoformat(),
        },
    )
    assert response.status_code == 302
    touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.organization_id == org_b.id))
    assert (touchpoint.kind, touchpoint.staff_id, touchpoint.note) == (
        TouchpointKind.LUNCH,
        me.id,
        "Lunch with the front desk team.",
    )
    db.session.refresh(org_b)
    assert org_b.next_check_in == today + timedelta(days=30)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "relationship.touchpoint_logged"))
    page = client.get(f"/relationships/organizations/{org_b.public_id}").get_data(as_text=True)
    assert "Lunch with the front desk team." in page


def test_touchpoint_form_errors_are_a_422_with_messages(client, login_as, db, org_b):
    login_as("staff")
    future = (practice_today() + timedelta(days=10)).isoformat()
    response = client.post(
        f"/relationships/organizations/{org_b.public_id}/touchpoints", data={"kind": "call", "occurred_on": future}
    )
    assert response.status_code == 422
    assert "cannot be in the future" in response.get_data(as_text=True)
    assert db.session.scalar(select(Touchpoint)) is None


def test_update_owner_status_and_check_in(client, login_as, db, org_b):
    login_as("staff")
    owner = factories.make_user(Role.STAFF, full_name="Olive Owner")
    db.session.commit()
    response = client.post(
        f"/relationships/organizations/{org_b.public_id}/relationship",
        data={"status": "inactive", "owner": str(owner.public_id), "next_check_in": "2027-03-01"},
    )
    assert response.status_code == 302
    db.session.refresh(org_b)
    assert org_b.relationship_status is RelationshipStatus.INACTIVE
    assert org_b.next_check_in == date(2027, 3, 1)
    assert db.session.get(RelationshipOwner, org_b.id).owner_id == owner.id
    # A partner cannot be made owner: not a choice.
    partner = factories.make_user(Role.PARTNER, org_b)
    db.session.commit()
    response = client.post(
        f"/relationships/organizations/{org_b.public_id}/relationship",
        data={"status": "active", "owner": str(partner.public_id)},
    )
    assert response.status_code == 422
    # Clearing the owner.
    client.post(f"/relationships/organizations/{org_b.public_id}/relationship", data={"status": "active", "owner": ""})
    assert db.session.get(RelationshipOwner, org_b.id) is None


def test_contacts_one_main_contact(client, login_as, db, org_b):
    login_as("staff")
    for name in ("Ana First", "Ben Second"):
        assert (
            client.post(
                f"/relationships/organizations/{org_b.public_id}/contacts",
                data={"name": name, "email": f"{name.split()[0].lower()}@example.com", "is_primary": "y"},
            ).status_code
            == 302
        )
    contacts = db.session.scalars(select(Contact).where(Contact.organization_id == org_b.id).order_by(Contact.id)).all()
    assert [(c.name, c.is_primary) for c in contacts] == [("Ana First", False), ("Ben Second", True)]


def test_organization_page_shows_an_accessible_chart(client, login_as, db, org_b):
    login_as("staff")
    referrals(org_b, [0, 1])
    db.session.commit()
    html = client.get(f"/relationships/organizations/{org_b.public_id}").get_data(as_text=True)
    assert 'role="img"' in html and '<title id="referrals-by-month-title">' in html
    assert "Show the numbers as a table" in html
    assert "2 referrals in all" in html
    # The chart is SVG and a table, drawn without script or inline style (the strict CSP allows neither); the one
    # script on every page is the layout's own file (static/js/portal.js), never inline.
    assert "style=" not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/portal.js">']


def test_unknown_organization_is_404(client, login_as, db):
    login_as("staff")
    assert client.get("/relationships/organizations/00000000-0000-4000-8000-000000000000").status_code == 404
