"""Organizations and user management by admins and partner admins."""

from sqlalchemy import select

from portal.partners.models import Organization
from tests import factories


def test_admin_creates_organization(client, login_as, db):
    login_as("admin")
    response = client.post(
        "/admin/organizations",
        data={"name": "Lakeview Wellness", "kind": "wellness", "city": "Madison", "us_state": "WI", "npi": ""},
    )
    assert response.status_code == 302
    org = db.session.scalar(select(Organization).where(Organization.name == "Lakeview Wellness"))
    assert response.headers["Location"].endswith(f"/admin/organizations/{org.public_id}")
    assert client.get(response.headers["Location"]).status_code == 200


def test_bad_organization_input_is_explained_and_nothing_stored(client, login_as, db):
    login_as("admin")
    before = db.session.scalars(select(Organization)).all()
    response = client.post(
        "/admin/organizations", data={"name": "", "kind": "spaceship", "us_state": "ZZ", "npi": "1234567890"}
    )
    assert response.status_code == 422
    for text in (b"This field is required", b"Not a valid choice", b"valid 10-digit NPI"):
        assert text in response.data
    assert db.session.scalars(select(Organization)).all() == before


def test_duplicate_organization_name(client, login_as, org_a, db):
    login_as("admin")
    response = client.post("/admin/organizations", data={"name": org_a.name.upper(), "kind": "other"})
    assert response.status_code == 422 and b"already exists" in response.data


def test_partner_admin_deactivates_colleague_but_not_other_org(client, login_as, org_a, org_b, db):
    login_as("partner_admin")
    colleague = factories.make_user("partner", org_a)
    stranger = factories.make_user("partner", org_b)
    assert client.post(f"/partner/users/{colleague.public_id}/deactivate").status_code == 302
    assert not colleague.is_enabled
    assert client.post(f"/partner/users/{stranger.public_id}/deactivate").status_code == 404
    assert stranger.is_enabled


def test_cannot_deactivate_self(client, login_as, db):
    admin = login_as("admin")
    response = client.post(f"/admin/users/{admin.public_id}/deactivate", follow_redirects=True)
    assert b"cannot deactivate your own account" in response.data and admin.is_enabled


def test_partner_admin_sees_only_own_org_users(client, login_as, org_a, org_b, db):
    login_as("partner_admin")
    mine = factories.make_user("partner", org_a, full_name="Dr. Mine")
    theirs = factories.make_user("partner", org_b, full_name="Dr. Theirs")
    page = client.get("/partner/users").data
    assert mine.full_name.encode() in page and theirs.full_name.encode() not in page
