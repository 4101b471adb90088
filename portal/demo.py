"""Demo data for `make run`: organizations, one login per role, partners of two organizations."""

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.core.permissions import Role
from portal.extensions import db
from portal.mfa.demo import enrol_demo_practice_users
from portal.outcomes.demo import seed_demo_outcomes
from portal.partners.models import Organization, OrganizationKind, RelationshipStatus
from portal.patients.demo import seed_demo_patients
from portal.referrals.demo import seed_demo_licensure, seed_demo_referrals
from portal.relationships.demo import seed_demo_relationships

DEMO_PASSWORD = "riverbend-demo-2026"

ORGANIZATIONS = [
    ("Lakeside Orthopedics", OrganizationKind.ORTHOPEDICS, "Madison", "WI", RelationshipStatus.ACTIVE),
    ("Maple Street Primary Care", OrganizationKind.PRIMARY_CARE, "Middleton", "WI", RelationshipStatus.ACTIVE),
    ("Summit Sports Medicine", OrganizationKind.SPORTS_MEDICINE, "Verona", "WI", RelationshipStatus.ACTIVE),
    ("Harbor Chiropractic", OrganizationKind.CHIROPRACTIC, "Monona", "WI", RelationshipStatus.PROSPECT),
]

# (e-mail, name, role, organization name or None, NPI)
USERS = [
    ("admin@riverbend-pt.example", "Avery Admin", Role.ADMIN, None, None),
    ("staff@riverbend-pt.example", "Sam Intake", Role.STAFF, None, None),
    ("therapist@riverbend-pt.example", "Terry Therapist", Role.STAFF, None, None),
    ("padmin@lakeside-ortho.example", "Dr. Pat Admin", Role.PARTNER_ADMIN, "Lakeside Orthopedics", "1234567893"),
    ("partner@lakeside-ortho.example", "Dr. Lee Ortho", Role.PARTNER, "Lakeside Orthopedics", "1245319599"),
    ("partner@maple-primary.example", "Dr. Morgan Maple", Role.PARTNER, "Maple Street Primary Care", "1679576722"),
    ("padmin@maple-primary.example", "Dr. Jordan Reed", Role.PARTNER_ADMIN, "Maple Street Primary Care", None),
    ("partner@summit-sports.example", "Dr. Casey Summit", Role.PARTNER, "Summit Sports Medicine", None),
]


def demo_logins() -> list[tuple[str, str, str]]:
    return [(email, role.label, org or "Riverbend PT (practice)") for email, _, role, org, _ in USERS]


def seed_demo_data() -> bool:
    """Create the demo data once. Returns False (and changes nothing) if users exist."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return False
    orgs = {}
    for name, kind, city, state, status in ORGANIZATIONS:
        orgs[name] = Organization(name=name, kind=kind, city=city, us_state=state, relationship_status=status)
        db.session.add(orgs[name])
    db.session.flush()
    password_hash = hash_password(DEMO_PASSWORD)
    for email, name, role, org, npi in USERS:
        db.session.add(
            User(
                email=email,
                full_name=name,
                role=role,
                npi=npi,
                password_hash=password_hash,
                organization_id=orgs[org].id if org else None,
            )
        )
    db.session.flush()
    enrol_demo_practice_users()
    seed_demo_licensure()
    seed_demo_referrals(seed_demo_patients(40))
    seed_demo_outcomes()
    seed_demo_relationships()
    return True
