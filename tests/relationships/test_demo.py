"""The demo relationship data loads once, on top of the demo organizations and users."""

from sqlalchemy import func, select

from portal.demo import seed_demo_data
from portal.relationships.demo import seed_demo_relationships
from portal.relationships.models import Event, RelationshipOwner, Resource, Touchpoint


def test_demo_relationships_load_once(db):
    assert seed_demo_data()  # seeds the relationship data too
    assert db.session.scalar(select(func.count()).select_from(Touchpoint)) >= 5
    assert db.session.scalar(select(func.count()).select_from(RelationshipOwner)) == 3
    assert all(e.is_published for e in db.session.scalars(select(Event)))
    pdf = db.session.scalar(select(Resource)).data
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert seed_demo_relationships() is False
