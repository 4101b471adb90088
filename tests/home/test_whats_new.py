"""The partner's home as "what's new" and the referral page as one timeline (issue 15): what counts
as news, who sees it, that opening a referral marks it seen, and that neither page costs a query per row."""

import re
from datetime import timedelta

import pytest

from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import Phase
from portal.referrals.lifecycle import Status
from portal.referrals.models import EventKind, ReferralEvent
from tests import factories
from tests.consent.helpers import add_consent, add_update
from tests.outcomes.helpers import add_score

NEWS = re.compile(r'<li class="news-item">.*?href="/partner/referrals/([0-9a-f-]{36})"', re.S)


def _released(referral, author, body="Walking without a stick.", when=None):
    item = add_update(referral, author, body=body)
    item.released_at = when or now_utc()
    item.approver_id = author.id
    db.session.flush()
    return item


def _status_event(referral, actor, to=Status.ACCEPTED, when=None):
    db.session.add(
        ReferralEvent(
            referral_id=referral.id,
            actor_id=actor.id,
            kind=EventKind.STATUS,
            from_status=referral.status,
            to_status=to,
            occurred_at=when or now_utc(),
        )
    )
    referral.status = to
    db.session.flush()


@pytest.fixture
def partner(login_as):
    return login_as(Role.PARTNER)


@pytest.fixture
def staff(db):
    return factories.make_user(Role.STAFF)


def _news(client) -> list[str]:
    return NEWS.findall(client.get("/partner/").text)


def test_a_released_update_is_news_until_the_partner_opens_the_referral(client, db, partner, staff, org_a):
    referral = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    quiet = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    add_consent(referral)
    assert _news(client) == []
    _released(referral, staff, body="Knee flexion 120 degrees.")
    assert _news(client) == [str(referral.public_id)]
    assert str(quiet.public_id) not in _news(client)
    page = client.get(f"/partner/referrals/{referral.public_id}").text
    assert re.search(r'timeline-item is-new">.*?Knee flexion 120 degrees', page, re.S)
    assert _news(client) == []
    again = client.get(f"/partner/referrals/{referral.public_id}").text
    assert "Knee flexion 120 degrees" in again and "is-new" not in again


def test_an_update_without_consent_is_neither_news_nor_shown(client, db, partner, staff, org_a):
    referral = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    _released(referral, staff, body="Private progress.")
    assert _news(client) == []
    page = client.get(f"/partner/referrals/{referral.public_id}").text
    assert "Private progress." not in page
    assert "once the patient agrees to share them" in page


def test_status_changes_and_scores_are_news_but_the_partners_own_notes_are_not(client, db, partner, staff, org_a):
    moved = factories.make_referral(org_a, clinician=partner)
    _status_event(moved, staff)
    scored = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    add_consent(scored, categories=())
    from portal.consent.models import Category

    add_consent(scored, categories=(Category.OUTCOME_SCORES,))
    add_score(scored, "NPRS", Phase.INTAKE, 6, recorder=staff)
    mine = factories.make_referral(org_a, clinician=partner)
    _status_event(mine, partner, to=Status.CANCELLED)  # the partner's own cancellation
    news = client.get("/partner/").text
    assert set(NEWS.findall(news)) == {str(moved.public_id), str(scored.public_id)}
    assert "Now accepted" in news and "New outcome scores" in news
    listed = client.get("/partner/?status=new").text
    assert str(moved.public_id) in listed and str(mine.public_id) not in listed


def test_old_happenings_are_history_not_news(client, db, partner, staff, org_a):
    referral = factories.make_referral(org_a, clinician=partner)
    _status_event(referral, staff, when=now_utc() - timedelta(days=45))
    assert _news(client) == []


def test_another_organizations_news_is_not_mine(client, db, partner, staff, org_b):
    theirs = factories.make_referral(org_b)
    _status_event(theirs, staff)
    add_consent(theirs)
    _released(theirs, staff)
    assert _news(client) == []


def test_a_damaged_filter_shows_the_open_referrals(client, partner):
    for status in ("nonsense", "<script>", "new' or 1=1"):
        assert client.get("/partner/", query_string={"status": status}).status_code == 200


def test_the_home_page_costs_the_same_with_5_and_with_60_referrals_with_news(
    client, db, partner, staff, org_a, count_queries
):
    def seed(n):
        for _ in range(n):
            referral = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
            add_consent(referral)
            _released(referral, staff)
            _status_event(referral, staff, to=Status.DISCHARGED)

    seed(5)
    client.get("/partner/")
    with count_queries() as few:
        response = client.get("/partner/")
    assert response.status_code == 200 and len(NEWS.findall(response.text)) == 5
    seed(55)
    with count_queries() as many:
        response = client.get("/partner/")
    assert response.status_code == 200 and len(NEWS.findall(response.text)) == 10  # NEWS_SHOWN
    assert "50 more referrals with news" in response.text
    assert many.n == few.n, f"{few.n} statements with 5 referrals with news, {many.n} with 60"


def test_the_referral_page_costs_the_same_with_a_short_and_a_long_timeline(
    client, db, partner, staff, org_a, count_queries
):
    from portal.consent.models import Category

    referral = factories.make_referral(org_a, clinician=partner, status=Status.IN_CARE)
    add_consent(referral, categories=(Category.PROGRESS_NOTES, Category.OUTCOME_SCORES))

    def seed(n):
        for i in range(n):
            _released(referral, staff, body=f"Update {i}")
            add_score(referral, "NPRS", Phase.INTERIM, 5, recorder=staff)
            db.session.add(
                ReferralEvent(referral_id=referral.id, actor_id=staff.id, kind=EventKind.NOTE, note=f"Note {i}")
            )
        db.session.flush()

    seed(2)
    url = f"/partner/referrals/{referral.public_id}"
    client.get(url)
    with count_queries() as few:
        assert client.get(url).status_code == 200
    seed(30)
    client.get(url)  # marks the news seen (a write), as the first visit above did
    with count_queries() as many:
        response = client.get(url)
    assert response.status_code == 200 and "Update 29" in response.text
    assert many.n == few.n, f"{few.n} statements with a short timeline, {many.n} with a long one"
