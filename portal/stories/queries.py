"""Which stories partners see: published *and* covered today by a publication consent (query time)."""
import uuid

from flask import abort
from sqlalchemy import ColumnElement, Select, and_, exists, select

from portal.auth.models import User
from portal.consent.policy import publication_permitted
from portal.extensions import db
from portal.referrals.models import Referral
from portal.stories.models import Condition, Story, StoryState


def is_visible() -> ColumnElement[bool]:
    """The visibility rule as SQL: revoking or letting the consent lapse hides the story at once."""
    return and_(Story.state == StoryState.PUBLISHED, publication_permitted(Story.patient_id))


def referred_by(user: User) -> ColumnElement[bool]:
    return exists(select(Referral.id).where(Referral.patient_id == Story.patient_id,
                                            Referral.organization_id == user.organization_id))


def published_stories(user: User, condition: Condition | None = None) -> list[tuple[Story, bool]]:
    """(story, referred by the user's organization), those first, then newest first."""
    mine = referred_by(user).label("mine")
    query: Select = select(Story, mine).where(is_visible())
    if condition is not None:
        query = query.where(Story.condition == condition)
    return [(story, bool(flag)) for story, flag in
            db.session.execute(query.order_by(mine.desc(), Story.published_at.desc(), Story.id.desc()))]


def get_published_or_404(user: User, public_id: uuid.UUID) -> tuple[Story, bool]:
    row = db.session.execute(select(Story, referred_by(user)).where(is_visible(), Story.public_id == public_id)).first()
    if row is None:
        abort(404)
    return row[0], bool(row[1])


def staff_stories() -> list[tuple[Story, bool]]:
    """Every story with whether partners can see it right now."""
    return [(story, bool(visible)) for story, visible in db.session.execute(
        select(Story, is_visible()).order_by(Story.updated_at.desc(), Story.id.desc()))]


def get_story_or_404(public_id: uuid.UUID) -> Story:
    return db.first_or_404(select(Story).where(Story.public_id == public_id))


def story_is_visible(story: Story) -> bool:
    return bool(db.session.scalar(select(is_visible()).where(Story.id == story.id)))


def consent_allows_publication(patient_id: int) -> bool:
    return bool(db.session.scalar(select(publication_permitted(patient_id))))
