"""Which stories partners see: published *and* covered today by a publication consent (query time)."""

import uuid

from flask import abort
from sqlalchemy import ColumnElement, Select, and_, case, exists, select

from portal.accounts.models import User
from portal.consent.policy import publication_permitted
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.extensions import db
from portal.referrals.models import Referral
from portal.stories.models import Condition, Story, StoryState


def is_visible() -> ColumnElement[bool]:
    """The visibility rule as SQL: revoking or letting the consent lapse hides the story at once."""
    return and_(Story.state == StoryState.PUBLISHED, publication_permitted(Story.patient_id))


def referred_by(user: User) -> ColumnElement[bool]:
    return exists(
        select(Referral.id).where(
            Referral.patient_id == Story.patient_id, Referral.organization_id == user.organization_id
        )
    )


def published_stories(
    user: User, condition: Condition | None = None, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE
) -> Page[tuple[Story, bool]]:
    """(story, referred by the user's organization), those first, then newest first."""
    mine = case((referred_by(user), 1), else_=0)
    query: Select = select(Story, mine).where(is_visible())
    if condition is not None:
        query = query.where(Story.condition == condition)
    keys = (
        SortKey(mine, lambda row: row[1], descending=True),
        SortKey(Story.published_at, lambda row: row[0].published_at, descending=True),
        SortKey(Story.id, lambda row: row[0].id, descending=True),
    )
    page = paginate(query, keys, listing=f"stories:{condition or ''}", cursor=cursor, per_page=per_page, scalars=False)
    page.items = [(story, bool(flag)) for story, flag in page.items]
    return page


def get_published_or_404(user: User, public_id: uuid.UUID) -> tuple[Story, bool]:
    row = db.session.execute(select(Story, referred_by(user)).where(is_visible(), Story.public_id == public_id)).first()
    if row is None:
        abort(404)
    return row[0], bool(row[1])


def staff_stories(*, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page[tuple[Story, bool]]:
    """Every story with whether partners can see it right now, last changed first."""
    keys = (
        SortKey(Story.updated_at, lambda row: row[0].updated_at, descending=True),
        SortKey(Story.id, lambda row: row[0].id, descending=True),
    )
    page = paginate(
        select(Story, is_visible()), keys, listing="staff-stories", cursor=cursor, per_page=per_page, scalars=False
    )
    page.items = [(story, bool(visible)) for story, visible in page.items]
    return page


def get_story_or_404(public_id: uuid.UUID) -> Story:
    return db.first_or_404(select(Story).where(Story.public_id == public_id))


def story_is_visible(story: Story) -> bool:
    return bool(db.session.scalar(select(is_visible()).where(Story.id == story.id)))


def consent_allows_publication(patient_id: int) -> bool:
    return bool(db.session.scalar(select(publication_permitted(patient_id))))
