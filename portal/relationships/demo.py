"""Demo relationship data for `make run`: owners, contacts, touchpoints, events and a resource.

Called by the demo seed after organizations and users exist; adds and flushes only.
"""

from datetime import datetime, time, timedelta

from sqlalchemy import select

from portal.accounts.models import User
from portal.core.time import practice_to_utc, practice_today
from portal.extensions import db
from portal.partners.models import Organization
from portal.relationships.models import (
    Contact,
    Event,
    EventKind,
    RelationshipOwner,
    Resource,
    Touchpoint,
    TouchpointKind,
)

# organization: (owner e-mail, next check-in in days from today, contacts, touchpoints)
# touchpoints: (days ago, kind, note)
PLAN = {
    "Lakeside Orthopedics": (
        "staff@riverbend-pt.example",
        12,
        [
            ("Renee Whitfield", "Practice manager", "rwhitfield@lakeside-ortho.example", "(608) 555-0142", True),
            ("Dr. Lee Ortho", "Orthopedic surgeon", None, None, False),
        ],
        [
            (75, TouchpointKind.LUNCH, "Lunch with the surgical team; they asked about post-op protocols."),
            (40, TouchpointKind.RESOURCE_SENT, "Sent the ACL rehabilitation timeline handout."),
            (9, TouchpointKind.CALL, "Quarterly call with the practice manager."),
        ],
    ),
    "Maple Street Primary Care": (
        "staff@riverbend-pt.example",
        0,
        [("Omar Haddad", "Office manager", "ohaddad@maple-primary.example", "(608) 555-0177", True)],
        [
            (120, TouchpointKind.VISIT, "Introductory visit; left referral pads."),
            (60, TouchpointKind.THANK_YOU_NOTE, "Thank-you card for the first ten referrals."),
        ],
    ),
    "Summit Sports Medicine": (
        "therapist@riverbend-pt.example",
        30,
        [("Jess Ortega", "Athletic trainer liaison", "jortega@summit-sports.example", None, True)],
        [(20, TouchpointKind.WEBINAR, "Two of their clinicians joined the return-to-sport webinar.")],
    ),
    "Harbor Chiropractic": (
        None,
        5,
        [("Dr. Ana Lindqvist", "Owner", "ana@harbor-chiro.example", "(608) 555-0190", True)],
        [],
    ),
}

EVENTS = [
    (
        "Return to sport after ACL reconstruction",
        EventKind.WEBINAR,
        14,
        "Online (the link is sent the day before)",
        "A 45-minute webinar on criteria-based return to sport, with time for questions.",
    ),
    (
        "Lunch-and-learn: low back pain pathways",
        EventKind.LUNCH_AND_LEARN,
        28,
        "Riverbend PT, 200 Regent St",
        "Lunch on us: when to refer for physical therapy, and what your patients can expect.",
    ),
]


def _demo_pdf(title: str) -> bytes:
    """A valid one-page PDF with a title line, built by hand (no PDF library needed)."""
    text = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def seed_demo_relationships(today=None) -> bool:
    """Add the demo relationship data once. Returns False (and changes nothing) if touchpoints exist."""
    if db.session.scalar(select(Touchpoint.id).limit(1)) is not None:
        return False
    today = today or practice_today()
    orgs = {o.name: o for o in db.session.scalars(select(Organization))}
    users = {u.email: u for u in db.session.scalars(select(User))}
    for name, (owner_email, check_in_days, contacts, touchpoints) in PLAN.items():
        org = orgs.get(name)
        if org is None:
            continue
        org.next_check_in = today + timedelta(days=check_in_days)
        if owner_email in users:
            db.session.add(RelationshipOwner(organization_id=org.id, owner_id=users[owner_email].id))
        for contact_name, title, email, phone, is_primary in contacts:
            db.session.add(
                Contact(
                    organization_id=org.id,
                    name=contact_name,
                    title=title,
                    email=email,
                    phone=phone,
                    is_primary=is_primary,
                )
            )
        for days_ago, kind, note in touchpoints:
            db.session.add(
                Touchpoint(
                    organization_id=org.id,
                    kind=kind,
                    occurred_on=today - timedelta(days=days_ago),
                    note=note,
                    staff_id=users[owner_email].id if owner_email in users else None,
                )
            )
    author = users.get("staff@riverbend-pt.example")
    for title, kind, in_days, location, description in EVENTS:
        starts = practice_to_utc(datetime.combine(today + timedelta(days=in_days), time(17, 30)))
        db.session.add(
            Event(
                title=title,
                kind=kind,
                starts_at=starts,
                location=location,
                description=description,
                is_published=True,
                created_by_id=author.id if author else None,
            )
        )
    pdf = _demo_pdf("Home exercise program: knee osteoarthritis")
    db.session.add(
        Resource(
            title="Home exercise program: knee osteoarthritis",
            description="A one-page handout clinicians can give patients.",
            filename="knee-oa-home-program.pdf",
            content_type="application/pdf",
            size=len(pdf),
            data=pdf,
            is_published=True,
            created_by_id=author.id if author else None,
        )
    )
    db.session.flush()
    return True
