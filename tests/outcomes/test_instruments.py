"""Instruments are data: seeded with cited MCIDs; an admin adds one or changes an MCID without code."""

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.outcomes.models import Instrument, Phase
from portal.referrals.lifecycle import Status
from tests import factories
from tests.outcomes.helpers import add_score, instrument

SEEDED = {
    "NPRS": (0, 10, False, 2, "Childs"),
    "ODI": (0, 100, False, 10, "Ostelo"),
    "LEFS": (0, 80, True, 9, "Binkley"),
    "PSFS": (0, 10, True, 2, "Cleland"),
    "QuickDASH": (0, 100, False, 14, "Sorensen"),
    "NDI": (0, 50, False, 7.5, "Young"),
}


def test_seeded_by_the_migration_with_citations(db):
    rows = {i.code: i for i in db.session.scalars(select(Instrument))}
    for code, (low, high, higher, mcid, author) in SEEDED.items():
        i = rows[code]
        assert (i.min_score, i.max_score, i.is_higher_better, i.mcid) == (low, high, higher, mcid)
        assert author in i.mcid_citation and i.is_active


def _form(**data):
    return {
        "code": "KOOS-JR",
        "name": "KOOS, Joint Replacement",
        "min_score": "0",
        "max_score": "100",
        "is_higher_better": "y",
        "mcid": "14",
        "mcid_citation": "Lyman S, et al. 2018.",
        "is_active": "y",
        **data,
    }


def test_admin_adds_an_instrument(client, login_as, db):
    login_as("admin")
    assert client.post("/admin/instruments", data=_form()).status_code == 302
    added = instrument("KOOS-JR")
    assert added.is_higher_better and added.mcid == 14
    assert (
        db.session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "outcome.instrument_changed"))["change"]
        == "added"
    )


def test_invalid_instrument_is_422(client, login_as, db):
    login_as("admin")
    response = client.post("/admin/instruments", data=_form(max_score="0", mcid=""))
    assert response.status_code == 422 and "The highest score must be above the lowest." in response.text
    assert client.post("/admin/instruments", data=_form(code="odi")).status_code == 422
    assert client.post("/admin/instruments", data=_form(mcid="150")).status_code == 422
    assert instrument("KOOS-JR") is None


def test_admin_changes_an_mcid_and_reports_follow(client, login_as, db, org_a):
    login_as("admin")
    odi = instrument("ODI")
    data = _form(code="ODI", name=odi.name, is_higher_better="", mcid="12.5", mcid_citation=odi.mcid_citation)
    assert client.post(f"/admin/instruments/{odi.public_id}", data=data).status_code == 302
    db.session.refresh(odi)
    assert odi.mcid == 12.5
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "outcome.instrument_changed")).all()[-1]
    assert (event.detail["mcid"], event.detail["previous_mcid"]) == ("12.5", "10")


def test_range_cannot_shrink_past_recorded_scores(client, login_as, db, org_a):
    login_as("admin")
    referral = factories.make_referral(org_a, status=Status.IN_CARE)
    add_score(referral, "NDI", Phase.INTAKE, 40)
    ndi = instrument("NDI")
    data = _form(code="NDI", name=ndi.name, is_higher_better="", max_score="30", mcid="7.5")
    response = client.post(f"/admin/instruments/{ndi.public_id}", data=data)
    assert response.status_code == 422 and "Recorded scores fall outside the new range" in response.text


def test_only_admins(client, login_as):
    login_as("staff")
    assert client.get("/admin/instruments").status_code == 403
