"""CSV import and export of prospects."""

import csv
import io

from sqlalchemy import func, select

from portal.core.permissions import Role
from portal.partners.models import Organization, OrganizationKind, RelationshipStatus
from portal.relationships.models import Contact, RelationshipOwner
from tests import factories

GOOD = """name,kind,city,state,npi,owner_email,next_check_in,contact_name,contact_email
Northside Family Medicine,primary_care,Madison,WI,1234567893,{owner},2027-01-15,Ann Lee,ann@northside.example
Peak Performance Chiro,Chiropractic,Verona,wi,,,,,
"""


def upload(client, text: str, name="prospects.csv"):
    return client.post(
        "/relationships/prospects/import",
        data={"file": (io.BytesIO(text.encode("utf-8-sig")), name)},
        content_type="multipart/form-data",
    )


def test_import_creates_prospects_with_owner_and_contact(client, login_as, db):
    me = login_as("staff")
    response = upload(client, GOOD.format(owner=me.email.upper()))
    assert response.status_code == 302
    north = db.session.scalar(select(Organization).where(Organization.name == "Northside Family Medicine"))
    assert north.relationship_status is RelationshipStatus.PROSPECT and north.kind is OrganizationKind.PRIMARY_CARE
    assert str(north.next_check_in) == "2027-01-15"
    assert db.session.get(RelationshipOwner, north.id).owner_id == me.id
    contact = db.session.scalar(select(Contact).where(Contact.organization_id == north.id))
    assert (contact.name, contact.email, contact.is_primary) == ("Ann Lee", "ann@northside.example", True)
    peak = db.session.scalar(select(Organization).where(Organization.name == "Peak Performance Chiro"))
    assert (peak.kind, peak.us_state) == (OrganizationKind.CHIROPRACTIC, "WI")
    # Importing the same file again changes nothing.
    upload(client, GOOD.format(owner=me.email))
    assert (
        db.session.scalar(
            select(func.count()).select_from(Organization).where(Organization.name == "Northside Family Medicine")
        )
        == 1
    )


def test_one_bad_row_imports_nothing_and_names_the_line(client, login_as, db):
    login_as("staff")
    partner = factories.make_user(Role.PARTNER)
    db.session.commit()
    text = (
        "name,kind,state,npi,owner_email,next_check_in\n"
        "Fine Clinic,other,WI,,,\n"
        "Bad Clinic,spaceship,XX,1234567890," + partner.email + ",tomorrow\n"
    )
    response = client.post(
        "/relationships/prospects/import",
        data={"file": (io.BytesIO(text.encode()), "p.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Line 3" in html and "kind must be one of" in html and "NPI is not valid" in html
    assert "owner_email is not an active practice staff account" in html and "Nothing was imported" in html
    assert db.session.scalar(select(Organization).where(Organization.name == "Fine Clinic")) is None


def test_import_refuses_unknown_columns_and_non_utf8(client, login_as, db):
    login_as("staff")
    html = client.post(
        "/relationships/prospects/import",
        data={"file": (io.BytesIO(b"name,ssn\nA,1\n"), "p.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Unknown column(s): ssn" in html
    html = client.post(
        "/relationships/prospects/import",
        data={"file": (io.BytesIO("name\nCafé\n".encode("latin-1")), "p.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "not UTF-8" in html


def test_export_lists_prospects_only_and_defuses_formulas(client, login_as, db, org_a):
    login_as("staff")
    factories.make_organization('=HYPERLINK("http://evil.example")', relationship_status=RelationshipStatus.PROSPECT)
    factories.make_organization("Quiet Prospect", relationship_status=RelationshipStatus.PROSPECT, city="Monona")
    db.session.commit()
    response = client.get("/relationships/prospects.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    names = [r["name"] for r in rows]
    assert "Quiet Prospect" in names and org_a.name not in names
    assert '\'=HYPERLINK("http://evil.example")' in names
    assert next(r for r in rows if r["name"] == "Quiet Prospect")["city"] == "Monona"


def test_export_round_trips_through_import(client, login_as, db):
    login_as("staff")
    upload(client, GOOD.format(owner=""))
    exported = client.get("/relationships/prospects.csv").get_data(as_text=True)
    db.session.execute(Contact.__table__.delete())
    db.session.execute(Organization.__table__.delete().where(Organization.relationship_status == "prospect"))
    db.session.commit()
    assert upload(client, exported).status_code == 302
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Organization)
            .where(Organization.relationship_status == RelationshipStatus.PROSPECT)
        )
        == 2
    )
