"""The partner report: SQL aggregates checked against hand-computed figures, suppression, consent, exports."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.consent.models import Category, ConsentStatus
from portal.core.permissions import Role
from portal.outcomes.reports import SUPPRESSED, Cell, DateRange, median_wait, partner_report
from portal.referrals.lifecycle import Status
from portal.referrals.models import EventKind, ReferralEvent
from tests import factories
from tests.clock import practice_today
from tests.consent.helpers import add_consent
from tests.outcomes.helpers import episode

TODAY = practice_today()
PERIOD = DateRange(TODAY - timedelta(days=364), TODAY)


@pytest.fixture
def cohort(app, db, org_a, org_b):
    """Org A: 14 discharged (ODI), 3 in care, 2 scheduled, 1 declined, 1 cancelled after acceptance; org B: noise."""
    clinician = factories.make_user(Role.PARTNER, org_a)
    odi = [
        (48, 20),
        (50, 38),
        (44, 30),
        (60, 48),
        (36, 26),
        (40, 30),
        (52, 40),
        (46, 12),
        (38, 30),
        (58, 30),
        (42, 33),
        (56, 44),
        (48, 40),
        (44, 34),
    ]
    made = []
    for i, (intake, discharge) in enumerate(odi):
        made.append(episode(org_a, clinician, wait_days=i + 1, scores={"ODI": (intake, discharge)}, visits=8 + i))
    for i in range(3):
        made.append(episode(org_a, clinician, status=Status.IN_CARE, wait_days=20 + i))
    for _ in range(2):
        made.append(episode(org_a, clinician, status=Status.SCHEDULED, wait_days=3))
    made.append(episode(org_a, clinician, status=Status.DECLINED))
    cancelled = episode(org_a, clinician, status=Status.CANCELLED)
    cancelled.events.append(
        ReferralEvent(
            kind=EventKind.STATUS, actor_id=clinician.id, from_status=Status.SUBMITTED, to_status=Status.ACCEPTED
        )
    )
    made.append(cancelled)
    episode(org_a, clinician, days_ago=400, scores={"ODI": (60, 10)})  # before the period
    for _ in range(12):
        episode(org_b, scores={"ODI": (80, 79)}, visits=40)
    db.session.flush()
    return made


def test_funnel_counts_and_conversion(cohort, org_a):
    report = partner_report(org_a, PERIOD)
    assert [(s.label, s.count.value) for s in report.stages] == [
        ("Referrals sent", 21),
        ("Accepted", 20),
        ("Scheduled", 19),
        ("Seen (first visit)", 17),
        ("Episodes completed", 14),
    ]
    assert str(report.stages[1].conversion) == "95%"  # 20 / 21
    assert report.stages[0].conversion is None and report.completed.value == 14


def test_median_days_to_first_visit(cohort, org_a):
    # Seen: waits 1..14 and 20, 21, 22: 17 values, the middle (9th) is 9.
    assert str(partner_report(org_a, PERIOD).median_days_to_first_visit) == "9.0"


def test_visits_and_outcomes(cohort, org_a):
    report = partner_report(org_a, PERIOD)
    assert report.visits_per_episode.value == pytest.approx(sum(range(8, 22)) / 14)
    (odi,) = report.outcomes
    pairs = [
        (48, 20),
        (50, 38),
        (44, 30),
        (60, 48),
        (36, 26),
        (40, 30),
        (52, 40),
        (46, 12),
        (38, 30),
        (58, 30),
        (42, 33),
        (56, 44),
        (48, 40),
        (44, 34),
    ]
    assert odi.code == "ODI" and odi.episodes.value == 14
    assert odi.mean_intake.value == pytest.approx(sum(i for i, _ in pairs) / 14)
    assert odi.mean_change.value == pytest.approx(sum(d - i for i, d in pairs) / 14)
    reached = sum(1 for i, d in pairs if i - d >= 10)
    assert odi.reached.value == reached == 11 and str(odi.share_reached) == f"{reached / 14:.0%}"


def test_small_cells_are_suppressed(app, db, org_a):
    for _ in range(10):
        episode(org_a, scores={"ODI": (50, 20)}, visits=10)
    report = partner_report(org_a, PERIOD)
    assert all(str(s.count) == SUPPRESSED for s in report.stages)
    assert str(report.median_days_to_first_visit) == SUPPRESSED and str(report.visits_per_episode) == SUPPRESSED
    odi = report.outcomes[0]
    assert {str(c) for c in (odi.episodes, odi.mean_intake, odi.mean_change, odi.reached, odi.share_reached)} == {
        SUPPRESSED
    }
    episode(org_a, scores={"ODI": (50, 20)}, visits=10)  # the 11th patient
    report = partner_report(org_a, PERIOD)
    assert str(report.stages[0].count) == "11" and str(report.outcomes[0].share_reached) == "100%"


def test_cells_count_patients_not_referrals(app, db, org_a):
    patient = factories.make_patient()
    for _ in range(12):
        episode(org_a, patient=patient)
    report = partner_report(org_a, PERIOD)
    assert report.stages[0].count.value == 12 and str(report.stages[0].count) == SUPPRESSED


def test_outcome_cells_count_patients_not_episodes(app, db, org_a):
    patients = [factories.make_patient(f"Repeat{i}") for i in range(10)]
    for patient in patients * 2:  # 20 episodes, 10 patients: still too few to show
        episode(org_a, patient=patient, scores={"ODI": (50, 20)})
    odi = partner_report(org_a, PERIOD).outcomes[0]
    assert odi.episodes.value == 20 and str(odi.episodes) == SUPPRESSED and str(odi.share_reached) == SUPPRESSED
    episode(org_a, scores={"ODI": (50, 45)})  # an 11th patient, who did not reach the MCID
    odi = partner_report(org_a, PERIOD).outcomes[0]
    assert str(odi.episodes) == "21" and str(odi.reached) == SUPPRESSED  # 20 episodes reached it, by 10 patients
    episode(org_a, scores={"ODI": (50, 30)})  # a 12th, who did
    odi = partner_report(org_a, PERIOD).outcomes[0]
    assert str(odi.episodes) == "22" and str(odi.reached) == "21" and str(odi.share_reached) == "95%"


def test_outcomes_count_only_consented_patients(app, db, org_a):
    for _ in range(11):
        episode(org_a, scores={"ODI": (50, 20)}, visits=10)
    for _ in range(5):
        episode(org_a, scores={"ODI": (50, 49)}, visits=30, consent=False)
    other = factories.make_organization()
    for _ in range(3):  # consent to another organization does not count
        r = episode(org_a, scores={"ODI": (50, 49)}, consent=False)
        add_consent(r, categories=(Category.OUTCOME_SCORES,), organization_id=other.id)
    revoked = episode(org_a, scores={"ODI": (50, 49)}, consent=False)
    add_consent(revoked, categories=(Category.OUTCOME_SCORES,), status=ConsentStatus.REVOKED)
    report = partner_report(org_a, PERIOD)
    assert report.stages[0].count.value == 20  # the funnel is the partner's own referrals, consent or not
    assert report.outcomes[0].episodes.value == 11 and report.outcomes[0].mean_change.value == -30
    assert report.visits_per_episode.value == 10 and report.consented_episodes.value == 11


def test_higher_is_better_and_float_mcid(app, db, org_a):
    for _ in range(11):
        episode(org_a, scores={"LEFS": (30, 39), "PSFS": (3.1, 5.1)})
    by_code = {o.code: o for o in partner_report(org_a, PERIOD).outcomes}
    assert by_code["LEFS"].reached.value == 11 and by_code["LEFS"].mean_change.value == 9
    assert by_code["PSFS"].reached.value == 11  # 5.1 - 3.1 is 1.9999999999999996 in floating point


@pytest.mark.parametrize(
    "values,expected", [([], None), ([5], 5), ([1, 9], 5), ([3, 1, 2], 2), ([4, 1, 3, 2], 2.5), ([7, 7, 1, 9, 100], 7)]
)
def test_median_wait_on_this_database(app, db, org_a, org_b, values, expected):
    for wait in values:
        episode(org_a, wait_days=wait, consent=False)
    episode(org_b, wait_days=1000, consent=False)  # another organization's wait never counts
    episode(org_a, status=Status.SCHEDULED, wait_days=1000, consent=False)  # booked, not seen: no wait yet
    result = median_wait(org_a.id, PERIOD, len(values))
    assert (result is None) if expected is None else result == pytest.approx(expected)


def test_partner_sees_own_organization_only(client, login_as, cohort, org_a, org_b):
    login_as("partner", organization=org_b)
    response = client.get("/partner/report")
    assert response.status_code == 200 and org_b.name in response.text and org_a.name not in response.text
    assert '<td class="num">12</td>' in response.text  # org B's 12 referrals, not A's 21


def test_partner_report_page_and_range(client, login_as, cohort, org_a):
    login_as("partner")
    response = client.get("/partner/report")
    assert response.status_code == 200
    assert "Referral outcomes: Org A Orthopedics" in response.text and '<td class="num">21</td>' in response.text
    old = client.get(f"/partner/report?start={(TODAY - timedelta(days=500)).isoformat()}&end={TODAY.isoformat()}")
    assert '<td class="num">22</td>' in old.text
    bad = client.get("/partner/report?start=2026-05-01&end=2026-01-01")
    assert bad.status_code == 422 and "The end date must be on or after the start date." in bad.text


def test_csv_and_pdf_are_audited(client, login_as, cohort, db):
    user = login_as("partner")
    csv_response = client.get("/partner/report.csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert "referrals,Referrals sent,21," in csv_response.text and "Share reaching MCID" in csv_response.text
    pdf = client.get("/partner/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "report.exported")).all()
    assert [(e.actor_id, e.detail["format"]) for e in events] == [(user.id, "csv"), (user.id, "pdf")]


def test_staff_open_any_organization(client, login_as, cohort, org_a):
    login_as("staff")
    response = client.get(f"/staff/reports/organizations/{org_a.public_id}")
    assert response.status_code == 200 and '<td class="num">21</td>' in response.text
    assert client.get(f"/staff/reports/organizations/{org_a.public_id}.csv").status_code == 200
    assert client.get("/staff/reports/organizations/00000000-0000-4000-8000-000000000000").status_code == 404


def test_cell_formatting():
    assert str(Cell(3, 3)) == SUPPRESSED and str(Cell(None, 20)) == "–" and str(Cell(0.5, 11, "{:.0%}")) == "50%"
