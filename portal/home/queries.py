"""What the home pages show: the staff's work waiting in each queue, and a partner's news.

A partner's "what's new" is what happened to their organization's referrals since they last
opened each one (``referral_views``), within the last NEWS_DAYS: a status the practice set, a
progress update released to them, outcome scores recorded. Updates and scores come through the
same scoped, consent-gated queries as the pages that show them (``visible_updates``,
``visible_scores``), so news never mentions what the partner may not open, and a revoked
consent takes its news away at once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, literal_column, or_, select, union_all

from portal.accounts.models import User
from portal.consent.policy import expiring_count
from portal.core.time import now_utc, practice_today
from portal.extensions import db
from portal.outcomes.models import OutcomeScore
from portal.outcomes.queries import visible_scores
from portal.partners.queries import organization_count
from portal.progress.models import ProgressUpdate
from portal.progress.queries import visible_updates
from portal.progress.services import approval_count
from portal.referrals.models import EventKind, Referral, ReferralEvent, ReferralView
from portal.referrals.queries import (
    ReferralRow,
    referral_rows,
    status_counts,
    urgent_referrals,
    urgent_waiting,
    visible_referrals,
)

NEWS_DAYS = 30  # older news is history: it stays on the referral's timeline, unmarked
NEWS_SHOWN = 10  # on the home page; the rest are one click away ("new for you" in the list)
NEWS_CAP = 200  # referrals with news counted (and marked in the list) at most


def staff_today(user: User) -> dict:
    return {
        "counts": status_counts(user),
        "urgent": urgent_waiting(user),
        "urgent_rows": urgent_referrals(user),
        "approvals": approval_count(user),
        "expiring": expiring_count(practice_today(), 30),
        "partner_count": organization_count(),
        "partner_users": db.session.scalar(
            select(func.count()).select_from(User).where(User.organization_id.is_not(None))
        ),
    }


def news_since() -> datetime:
    return now_utc() - timedelta(days=NEWS_DAYS)


def _kind(referral_id, at, *, status: int = 0, updates: int = 0, scores: int = 0) -> tuple:
    """The columns every part of the union shares, labelled (counts are SQL constants)."""
    return (
        referral_id.label("referral_id"),
        literal_column(str(status)).label("status"),
        literal_column(str(updates)).label("updates"),
        literal_column(str(scores)).label("scores"),
        at.label("at"),
    )


def _happenings(user: User, referral_id: int | None = None):
    """(referral_id, status, updates, scores, at): one row per thing that happened to one of the partner's
    referrals (or to that one) in the news window, by someone else, that the partner may see."""
    since = news_since()
    status = (
        visible_referrals(user)
        .with_only_columns(*_kind(ReferralEvent.referral_id, ReferralEvent.occurred_at, status=1))
        .where(
            ReferralEvent.referral_id == Referral.id,
            ReferralEvent.kind == EventKind.STATUS,
            ReferralEvent.occurred_at > since,
            or_(ReferralEvent.actor_id.is_(None), ReferralEvent.actor_id != user.id),
        )
    )
    updates = (
        visible_updates(user)
        .with_only_columns(*_kind(ProgressUpdate.referral_id, ProgressUpdate.released_at, updates=1))
        .where(ProgressUpdate.released_at > since)
    )
    scores = (
        visible_scores(user)
        .with_only_columns(*_kind(OutcomeScore.referral_id, OutcomeScore.created_at, scores=1))
        .where(OutcomeScore.created_at > since)
    )
    if referral_id is not None:
        status = status.where(ReferralEvent.referral_id == referral_id)
        updates = updates.where(ProgressUpdate.referral_id == referral_id)
        scores = scores.where(OutcomeScore.referral_id == referral_id)
    return union_all(status, updates, scores).subquery("happened")


def _unseen(user: User, happened) -> Select:
    """The happenings the partner has not seen: after they last opened the referral (if they did)."""
    return (
        select(happened)
        .outerjoin(
            ReferralView,
            and_(ReferralView.referral_id == happened.c.referral_id, ReferralView.user_id == user.id),
        )
        .where(or_(ReferralView.seen_at.is_(None), happened.c.at > ReferralView.seen_at))
    )


def news_ids(user: User) -> Select:
    """A select of the ids of the partner's referrals with unseen news (for ``partner_referrals(among=...)``)."""
    unseen = _unseen(user, _happenings(user)).subquery("unseen")
    return select(unseen.c.referral_id).distinct()


@dataclass(frozen=True, slots=True)
class News:
    """One referral's unseen news: the referral as a list row, what kinds of thing happened, and when last."""

    row: ReferralRow
    status: bool
    updates: int
    scores: int
    latest: datetime


@dataclass(frozen=True)
class PartnerNews:
    shown: list[News]  # newest first, at most NEWS_SHOWN
    referral_ids: frozenset[int]  # every referral with news (up to NEWS_CAP): the list marks them
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.shown)

    @property
    def capped(self) -> bool:
        return self.total > NEWS_CAP


def partner_news(user: User) -> PartnerNews:
    """The partner's news, two statements whatever its size: the referrals with news (aggregated in SQL,
    newest first), then the list rows of the ones shown."""
    unseen = _unseen(user, _happenings(user)).subquery("unseen")
    latest = func.max(unseen.c.at).label("latest")
    grouped = db.session.execute(
        select(
            unseen.c.referral_id,
            func.max(unseen.c.status).label("status"),
            func.sum(unseen.c.updates).label("updates"),
            func.sum(unseen.c.scores).label("scores"),
            latest,
        )
        .group_by(unseen.c.referral_id)
        .order_by(latest.desc(), unseen.c.referral_id.desc())
        .limit(NEWS_CAP + 1)
    ).all()
    head = grouped[:NEWS_SHOWN]
    rows = {row.id: row for row in referral_rows(user, [g.referral_id for g in head])}
    shown = [
        News(rows[g.referral_id], bool(g.status), int(g.updates), int(g.scores), g.latest)
        for g in head
        if g.referral_id in rows
    ]
    return PartnerNews(shown, frozenset(g.referral_id for g in grouped[:NEWS_CAP]), len(grouped))


def has_news(user: User, referral: Referral) -> bool:
    """Whether opening this referral shows the partner anything they have not seen (then it is marked seen)."""
    return bool(db.session.scalar(select(_unseen(user, _happenings(user, referral.id)).exists())))


def last_seen(user: User, referral: Referral) -> datetime | None:
    return db.session.scalar(
        select(ReferralView.seen_at).where(ReferralView.user_id == user.id, ReferralView.referral_id == referral.id)
    )
