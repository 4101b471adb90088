"""Staff Today as a work surface (issue 15): the urgent referrals themselves, and counts that each
open the queue they count; its cost does not grow with the queue."""

import re

from portal.core.permissions import Role
from portal.referrals.lifecycle import Status
from portal.referrals.models import Urgency
from tests import factories


def test_urgent_referrals_are_shown_inline_and_counts_link_to_filtered_queues(client, db, login_as, org_a):
    login_as(Role.STAFF)
    urgent = factories.make_referral(org_a, urgency=Urgency.URGENT, patient=factories.make_patient(family_name="Quick"))
    routine = factories.make_referral(org_a, patient=factories.make_patient(family_name="Slowly"))
    html = client.get("/staff/").text
    assert urgent.reference in html and "Quick" in html and routine.reference not in html
    for link in (
        "/staff/referrals/?status=submitted&amp;urgent=1",
        "/staff/referrals/?status=accepted",
        "/staff/approvals",
    ):
        assert f'href="{link}"' in html
    queue = client.get("/staff/referrals/?status=submitted&urgent=1").text
    assert urgent.reference in queue and routine.reference not in queue


def test_staff_find_a_referral_by_reference_whatever_its_status(client, db, login_as, org_a):
    login_as(Role.STAFF)
    done = factories.make_referral(org_a, status=Status.DISCHARGED)
    other = factories.make_referral(org_a)
    html = client.get("/staff/referrals/", query_string={"reference": done.reference.lower()}).text
    assert done.reference in html and other.reference not in html
    for junk in ("<script>", "x" * 500, "RB-"):
        assert client.get("/staff/referrals/", query_string={"reference": junk}).status_code == 200


def test_today_costs_the_same_with_few_and_many_urgent_referrals(client, db, login_as, org_a, count_queries):
    login_as(Role.STAFF)

    def seed(n):
        for _ in range(n):
            factories.make_referral(org_a, urgency=Urgency.URGENT)

    seed(2)
    client.get("/staff/")
    with count_queries() as few:
        response = client.get("/staff/")
    assert len(re.findall(r'class="work-item"', response.text)) == 2
    seed(40)
    with count_queries() as many:
        response = client.get("/staff/")
    assert len(re.findall(r'class="work-item"', response.text)) == 5
    assert "All 42 urgent referrals" in response.text
    assert many.n == few.n
