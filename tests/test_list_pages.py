"""Every list that can grow is paged, and a page costs what it shows.

For each list page: the number of SQL statements is the same with 5 rows and with 100 rows
(no query per row), a page holds at most 25 rows, and walking the pages (forwards, then
back) shows every row exactly once, even when a new row arrives at the top meanwhile.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from portal.audit.services import AuditAction, record
from portal.consent.models import Category
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.progress.models import UpdateState
from portal.referrals.lifecycle import Status
from portal.referrals.models import Urgency
from tests import factories
from tests.conftest import sign_in
from tests.consent.helpers import add_update

NEXT = re.compile(r'href="([^"]+)" rel="next"')
PREVIOUS = re.compile(r'href="([^"]+)" rel="prev"')


@dataclass
class ListPage:
    role: Role
    url: str
    row: re.Pattern  # one match per row shown, capturing the row's identity
    seed: Callable  # seed(context, n): add n rows the page lists

    def __str__(self):
        return self.url


def _seed_partner_referrals(ctx, n):
    clinicians = ctx.setdefault(
        "clinicians", [ctx["user"]] + [factories.make_user(Role.PARTNER, ctx["org"]) for _ in range(2)]
    )
    for i in range(n):
        factories.make_referral(
            ctx["org"], clinician=clinicians[i % 3], patient=factories.make_patient(family_name=f"Family{i}")
        )


def _seed_queue(ctx, n):
    other = ctx.setdefault("other_org", factories.make_organization())
    for i in range(n):
        factories.make_referral(
            other if i % 2 else ctx["org"],
            urgency=Urgency.URGENT if i % 7 == 0 else Urgency.ROUTINE,
            patient=factories.make_patient(family_name=f"Queue{i}"),
        )


def _seed_approvals(ctx, n):
    author = ctx.setdefault("author", factories.make_user(Role.STAFF))
    for i in range(n):
        referral = factories.make_referral(
            ctx["org"], status=Status.IN_CARE, patient=factories.make_patient(family_name=f"Update{i}")
        )
        item = add_update(referral, author, state=UpdateState.PENDING, category=Category.PROGRESS_NOTES)
        item.submitted_at = now_utc() - timedelta(minutes=200 - i)
    db.session.flush()


def _seed_audit(ctx, n):
    for _ in range(n):
        record(AuditAction.RELATIONSHIP_UPDATED, actor=ctx["user"], obj=factories.make_organization())
    db.session.flush()


def _seed_disclosures(ctx, n):
    referral = ctx.get("disclosed") or ctx.setdefault("disclosed", factories.make_referral(ctx["org"]))
    partner = factories.make_user(Role.PARTNER, ctx["org"])
    for i in range(n):
        item = add_update(referral, ctx["user"], body=f"Update {i}")
        record(
            AuditAction.DISCLOSURE,
            actor=partner,
            obj=item,
            patient_id=referral.patient.public_id,
            category="progress_notes",
            organization=ctx["org"].name,
        )
    db.session.flush()


def _seed_partner_list(ctx, n):
    from portal.relationships.models import RelationshipOwner, Touchpoint, TouchpointKind
    from tests.clock import practice_today

    owner = ctx.setdefault("owner", factories.make_user(Role.STAFF))
    for i in range(n):
        org = factories.make_organization(f"Relate {len(ctx.setdefault('related', [])):04d}")
        ctx["related"].append(org)
        if i % 3 == 0:  # some with an owner and a touchpoint, the rest empty (sorted last)
            db.session.add(RelationshipOwner(organization_id=org.id, owner_id=owner.id))
            db.session.add(
                Touchpoint(
                    organization_id=org.id,
                    staff_id=owner.id,
                    kind=TouchpointKind.CALL,
                    occurred_on=practice_today() - timedelta(days=i % 40),
                )
            )
    db.session.flush()


def _seed_users(ctx, n):
    for i in range(n):
        factories.make_user(Role.PARTNER if i % 2 else Role.PARTNER_ADMIN, ctx["org"] if i % 3 else None)


def _seed_organizations(ctx, n):
    for _ in range(n):
        factories.make_organization()


def _seed_dead_letters(ctx, n):
    from portal.notifications.models import OutboxState
    from portal.notifications.services import enqueue

    for _ in range(n):
        message = enqueue(
            f"gone{len(ctx.setdefault('dead', []))}@example.com",
            "checkin_due",
            organization="Org",
            link="https://portal.example/o/1",
        )
        db.session.flush()
        message.state, message.attempts, message.last_error = OutboxState.DEAD, 8, "550 5.1.1 Mailbox unavailable"
        ctx["dead"].append(message)
    db.session.flush()


def _seed_stories(ctx, n):
    from portal.stories.models import Story, StoryState
    from tests.consent.helpers import add_consent

    staff = ctx.setdefault("writer", factories.make_user(Role.STAFF))
    others = ctx.setdefault("other_org", factories.make_organization())
    for i in range(n):
        referral = factories.make_referral(ctx["org"] if i % 2 else others)
        add_consent(referral, categories=(Category.STORY_PUBLICATION,))
        story = Story(
            patient_id=referral.patient_id,
            author_id=staff.id,
            condition="knee",
            state=StoryState.PUBLISHED,
            published_at=now_utc() - timedelta(hours=i),
        )
        story.title, story.highlight, story.body_markdown = f"Story {i}", "LEFS 31 -> 68", "Better."
        db.session.add(story)
    db.session.flush()


def _seed_expiring(ctx, n):
    from tests.clock import practice_today
    from tests.consent.helpers import add_consent

    for i in range(n):
        referral = factories.make_referral(ctx["org"], patient=factories.make_patient(family_name=f"Expiring{i}"))
        add_consent(referral, end=practice_today() + timedelta(days=1 + i % 25))


UUID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
PAGES = [
    ListPage(
        Role.PARTNER, "/partner/?status=", re.compile(r'href="/partner/referrals/' + UUID), _seed_partner_referrals
    ),
    ListPage(Role.STAFF, "/staff/referrals/", re.compile(r'href="/staff/referrals/' + UUID), _seed_queue),
    ListPage(Role.STAFF, "/staff/approvals", re.compile(r"/staff/updates/" + UUID + "/approve"), _seed_approvals),
    ListPage(
        Role.ADMIN,
        "/admin/audit?action=relationship.updated",
        re.compile(r"<td>Organization (\w{8})</td>"),
        _seed_audit,
    ),
    ListPage(
        Role.STAFF,
        "/relationships/?q=relate&sort=last_touchpoint&dir=desc",
        re.compile(r'href="/relationships/organizations/' + UUID),
        _seed_partner_list,
    ),
    ListPage(Role.ADMIN, "/admin/users", re.compile(r"<td>(user\d+@example\.com)</td>"), _seed_users),
    ListPage(
        Role.ADMIN, "/admin/organizations", re.compile(r'href="/admin/organizations/' + UUID), _seed_organizations
    ),
    ListPage(Role.ADMIN, "/admin/outbox", re.compile(r"/admin/outbox/" + UUID + "/retry"), _seed_dead_letters),
    ListPage(Role.PARTNER, "/partner/stories", re.compile(r'href="/partner/stories/' + UUID), _seed_stories),
    ListPage(Role.STAFF, "/staff/stories", re.compile(r'href="/staff/stories/' + UUID), _seed_stories),
    ListPage(
        Role.STAFF,
        "/staff/consents/expiring",
        re.compile(r'href="/staff/patients/' + UUID + r'">Expiring'),
        _seed_expiring,
    ),
    ListPage(
        Role.STAFF, "/staff/patients/{patient}/disclosures", re.compile(r"ProgressUpdate (\w{8})\)"), _seed_disclosures
    ),
]


def _context(db, login_as, org_a, page: ListPage) -> dict:
    ctx = {"org": org_a, "user": login_as(page.role)}
    if "{patient}" in page.url:
        ctx["disclosed"] = factories.make_referral(org_a)
    return ctx


def _url(page: ListPage, ctx) -> str:
    return page.url.format(patient=ctx["disclosed"].patient.public_id if "disclosed" in ctx else "")


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_a_list_page_issues_the_same_queries_at_5_and_at_100_rows(client, db, login_as, org_a, count_queries, page):
    ctx = _context(db, login_as, org_a, page)
    url = _url(page, ctx)
    baseline = len(page.row.findall(client.get(url).text))  # rows the fixtures made (the admin's own account, ...)
    page.seed(ctx, 5)
    client.get(url)  # warm: the once-a-minute session touch and the like are not the page's cost
    with count_queries() as few:
        response = client.get(url)
    assert response.status_code == 200 and len(set(page.row.findall(response.text))) == baseline + 5
    page.seed(ctx, 95)
    with count_queries() as many:
        response = client.get(url)
    assert response.status_code == 200 and len(set(page.row.findall(response.text))) == 25
    assert many.n == few.n, f"{url}: {few.n} statements at 5 rows, {many.n} at 100"


def _walk(client, page: ListPage, url: str, during=None) -> tuple[list[str], str]:
    """Every row on every page, following the Next links; ``during`` runs after the first page."""
    seen, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        rows = list(dict.fromkeys(page.row.findall(response.text)))
        assert 0 < len(rows) <= 25
        seen += rows
        pages += 1
        if pages == 1 and during:
            during()
        found = NEXT.search(response.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    return seen, response.text


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_paging_shows_every_row_once_even_when_a_row_arrives_meanwhile(client, db, login_as, org_a, page):
    ctx = _context(db, login_as, org_a, page)
    url = _url(page, ctx)
    baseline = len(page.row.findall(client.get(url).text))
    page.seed(ctx, 60 - baseline)
    everything, last_page = _walk(client, page, url)
    assert len(everything) == len(set(everything)) == 60
    back = PREVIOUS.search(last_page)
    assert (
        list(dict.fromkeys(page.row.findall(client.get(back.group(1).replace("&amp;", "&")).text))) == everything[25:50]
    )
    # Someone adds a row while the list is being read: no row is shown twice and none is skipped.
    seen, _ = _walk(client, page, url, during=lambda: page.seed(ctx, 1))
    assert len(seen) == len(set(seen)) and set(everything) <= set(seen)


def test_a_damaged_page_link_is_a_400_with_a_way_back(client, login_as):
    login_as(Role.PARTNER)
    response = client.get("/partner/?cursor=not-a-cursor")
    assert response.status_code == 400 and b"out of date or damaged" in response.data


def test_a_cursor_from_one_list_does_not_page_another(app, client, db, login_as, org_a):
    ctx = {"org": org_a, "user": login_as(Role.PARTNER)}
    _seed_partner_referrals(ctx, 30)
    cursor = re.search(r"cursor=([^&\"]+)", NEXT.search(client.get("/partner/?status=").text).group(1)).group(1)
    staff = app.test_client()
    assert sign_in(staff, factories.make_user(Role.STAFF).email).status_code == 302
    assert staff.get(f"/staff/referrals/?cursor={cursor}").status_code == 400
    assert staff.get("/staff/referrals/").status_code == 200


def test_partners_find_a_referral_by_its_reference(client, db, login_as, org_a, org_b):
    partner = login_as(Role.PARTNER)
    mine = factories.make_referral(org_a, clinician=partner, status=Status.DISCHARGED)
    theirs = factories.make_referral(org_b)
    for typed in (
        mine.reference,
        mine.reference.lower(),
        mine.reference[3:],
        mine.reference[:7] + " ",
        f" {mine.reference[:3]} {mine.reference[3:]}",
    ):
        response = client.get("/partner/", query_string={"reference": typed})
        assert response.status_code == 200 and f"/partner/referrals/{mine.public_id}" in response.text, typed
    other = client.get("/partner/", query_string={"reference": theirs.reference}).text
    assert str(theirs.public_id) not in other and "No referral of yours" in other
    nothing = client.get("/partner/", query_string={"reference": "not a reference!"})
    assert nothing.status_code == 200 and b"No referral of yours" in nothing.data
