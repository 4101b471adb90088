"""Staff analytics: sources by volume and outcomes, monthly trend, funnel, partners whose referrals dropped."""

from datetime import timedelta

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.outcomes import analytics
from portal.outcomes.reports import DateRange
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.outcomes.helpers import episode

TODAY = practice_today()
PERIOD = DateRange(TODAY - timedelta(days=364), TODAY)


def test_sources_ranked_by_volume_and_outcomes(app, db, org_a, org_b):
    for _ in range(12):
        episode(org_a, scores={"ODI": (50, 45)})  # many referrals, few reach MCID
    for _ in range(11):
        episode(org_b, scores={"ODI": (50, 20)})  # fewer referrals, all reach MCID
    small = factories.make_organization("Small Clinic")
    episode(small, scores={"ODI": (50, 10)})
    rows = analytics.sources(PERIOD)
    assert [r.organization.name for r in rows] == [org_a.name, org_b.name, "Small Clinic"]
    assert (rows[0].referrals, rows[0].paired, rows[0].reached) == (12, 12, 0)
    ranked, unranked = analytics.ranked_by_outcomes(rows)
    assert [r.organization.name for r in ranked] == [org_b.name, org_a.name]
    assert [r.organization.name for r in unranked] == ["Small Clinic"]


def test_dropped_partners(app, db, org_a, org_b):
    for days in (10, 100, 110, 120, 130):  # 1 now vs 4 before: dropped
        episode(org_a, status=Status.SUBMITTED, days_ago=days, consent=False)
    for days in (10, 20, 100, 110):  # 2 vs 2: steady
        episode(org_b, status=Status.SUBMITTED, days_ago=days, consent=False)
    drops = analytics.dropped_partners(TODAY)
    assert [(d.organization.name, d.current, d.previous) for d in drops] == [(org_a.name, 1, 4)]
    assert drops[0].change == -0.75


def test_monthly_trend_groups_in_sql(app, db, org_a):
    for days in (0, 1, 40):
        episode(org_a, status=Status.SUBMITTED, days_ago=days, consent=False)
    trend = analytics.monthly_trend(TODAY, [org_a.id])[org_a.id]
    assert sum(trend.values()) == 3 and all(len(k) == 7 and k[4] == "-" for k in trend)


def test_page_and_csv(client, login_as, db, org_a):
    for _ in range(3):
        episode(org_a, scores={"NPRS": (8, 3)})
    login_as("staff")
    page = client.get("/staff/analytics")
    assert page.status_code == 200 and "Referrals per month by source" in page.text and org_a.name in page.text
    assert "Conversion funnel" in page.text
    csv = client.get("/staff/analytics.csv")
    assert csv.status_code == 200 and f"source,{org_a.name},3,3,3,3,3,1.000" in csv.text
    assert (
        db.session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "report.exported"))["report"]
        == "analytics"
    )
