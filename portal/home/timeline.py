"""One referral, everything that happened to it, as the partner sees it: one timeline, newest first.

Status changes, notes and attachments come from the referral's own timeline; progress updates and
outcome scores from the scoped, consent-gated queries (``visible_updates``, ``visible_scores``), so
the page shows exactly what the patient's page would. What happened after the partner last opened
the referral (within the news window) is marked new.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby

from portal.accounts.models import User
from portal.consent.models import Category
from portal.consent.policy import may_see
from portal.outcomes.charts import EpisodeCharts, episode_charts
from portal.outcomes.models import OutcomeScore
from portal.outcomes.queries import scores_for_referral
from portal.progress.models import ProgressUpdate
from portal.progress.queries import updates_for_referral
from portal.referrals.models import EventKind, Referral, ReferralEvent


@dataclass(frozen=True)
class Entry:
    """One line of the timeline. ``kind``: submitted, status, note, attachment, update or scores."""

    at: datetime
    kind: str
    is_new: bool
    event: ReferralEvent | None = None
    update: ProgressUpdate | None = None
    scores: list[OutcomeScore] = field(default_factory=list)
    measured_on: date | None = None


@dataclass(frozen=True)
class ReferralStory:
    entries: list[Entry]
    updates: list[ProgressUpdate]  # shown: each is a disclosure
    scores: list[OutcomeScore]  # shown: each is a disclosure
    charts: list[EpisodeCharts]
    shares_updates: bool  # a consent in effect today lets this partner read progress updates
    shares_scores: bool  # ... outcome scores

    @property
    def new_count(self) -> int:
        return sum(e.is_new for e in self.entries)


def referral_story(user: User, referral: Referral, new_after: datetime) -> ReferralStory:
    """Everything about ``referral`` the partner may see; entries after ``new_after`` (not their own) are new."""
    updates = updates_for_referral(user, referral.id)
    scores = scores_for_referral(user, referral.id)
    entries = [
        Entry(e.occurred_at, e.kind.value, _after(e.occurred_at, new_after) and e.actor_id != user.id, event=e)
        for e in referral.events
    ]
    entries += [Entry(u.released_at, "update", _after(u.released_at, new_after), update=u) for u in updates]
    for day, group in groupby(sorted(scores, key=lambda s: (s.measured_on, s.created_at)), key=lambda s: s.measured_on):
        group = list(group)
        at = max(s.created_at for s in group)
        entries.append(Entry(at, "scores", _after(at, new_after), scores=group, measured_on=day))
    order = {EventKind.SUBMITTED.value: 0}
    entries.sort(key=lambda e: (e.at, -order.get(e.kind, 1)), reverse=True)
    return ReferralStory(
        entries=entries,
        updates=updates,
        scores=scores,
        charts=episode_charts(scores),
        shares_updates=bool(updates)
        or any(may_see(user, referral.patient_id, c) for c in (Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY)),
        shares_scores=bool(scores) or may_see(user, referral.patient_id, Category.OUTCOME_SCORES),
    )


def _after(at: datetime | None, new_after: datetime) -> bool:
    return at is not None and at > new_after
