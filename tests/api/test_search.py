"""FHIR search: every advertised parameter narrows the results, inside the organization's scope.

Two patients of organization A (each with their own referrals, scores, progress updates and
consents) and one of organization B. Each test asks for one thing and checks exactly which ids
come back; every Bundle validates as R4.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from portal.api.fhir import INSTRUMENT, LOINC, OBSERVATION_CATEGORY, PHASE, REFERENCE
from portal.api.fhir.searchparams import SEARCH_PARAMS
from portal.audit.models import AuditEvent
from portal.consent.models import Category
from portal.core.permissions import Role
from portal.extensions import db
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from portal.referrals.lifecycle import Status
from tests import factories
from tests.api.helpers import assert_valid_fhir, bearer
from tests.clock import PRACTICE_ZONE
from tests.consent.helpers import add_consent, add_update

BASE = "http://127.0.0.1:5000/fhir"
ALL_CLASSES = (Category.OUTCOME_SCORES, Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY)


@dataclass
class World:
    one: object  # patient 1 of organization A
    two: object  # patient 2 of organization A
    other: object  # organization B's patient
    tasks: dict  # name -> referral
    scores: dict  # name -> OutcomeScore
    docs: dict  # name -> ProgressUpdate
    consents: dict  # name -> Consent


def _score(referral, staff, code, phase, measured_on, value=5):
    instrument = db.session.scalar(select(Instrument).where(Instrument.code == code))
    score = OutcomeScore(
        referral_id=referral.id,
        instrument_id=instrument.id,
        phase=phase,
        measured_on=measured_on,
        score=value,
        recorded_by_id=staff.id,
    )
    db.session.add(score)
    db.session.flush()
    return score


def _released(update, when):
    update.released_at = when
    db.session.flush()
    return update


@pytest.fixture
def world(org_a, org_b, clinician_a):
    staff = factories.make_user(Role.STAFF)
    one, two, other = (factories.make_patient(name) for name in ("Rivera", "Okafor", "Lindqvist"))
    t1 = factories.make_referral(org_a, clinician_a, patient=one)
    t1b = factories.make_referral(org_a, clinician_a, patient=one, status=Status.ACCEPTED)
    t2 = factories.make_referral(org_a, clinician_a, patient=two, status=Status.SCHEDULED)
    tb = factories.make_referral(org_b, patient=other)
    consents = {
        "one": add_consent(t1, categories=ALL_CLASSES),
        "two": add_consent(t2, categories=ALL_CLASSES),
        "other": add_consent(tb, categories=ALL_CLASSES),
    }
    scores = {
        "one_nprs": _score(t1, staff, "NPRS", Phase.INTAKE, date(2026, 1, 5)),
        "one_odi": _score(t1b, staff, "ODI", Phase.DISCHARGE, date(2026, 2, 10), 30),
        "two_nprs": _score(t2, staff, "NPRS", Phase.INTAKE, date(2026, 1, 7)),
        "other_nprs": _score(tb, staff, "NPRS", Phase.INTAKE, date(2026, 1, 5)),
    }
    utc = UTC
    docs = {
        "one_note": _released(add_update(t1, staff), datetime(2026, 1, 10, 15, tzinfo=utc)),
        "one_discharge": _released(
            add_update(t1, staff, category=Category.DISCHARGE_SUMMARY), datetime(2026, 3, 1, 15, tzinfo=utc)
        ),
        "two_note": _released(add_update(t2, staff), datetime(2026, 1, 12, 15, tzinfo=utc)),
        "other_note": _released(add_update(tb, staff), datetime(2026, 1, 10, 15, tzinfo=utc)),
    }
    return World(one, two, other, {"one": t1, "one_accepted": t1b, "two": t2, "other": tb}, scores, docs, consents)


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


def search(client, headers, path, status=200, **extra_headers):
    response = client.get(path, headers={**headers, **extra_headers})
    assert response.status_code == status, (path, response.get_json())
    body = response.get_json()
    assert_valid_fhir(body)
    return body


def ids(bundle) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def of(*objects) -> set[str]:
    return {str(o.public_id) for o in objects}


def link(bundle, relation) -> str | None:
    return next((item["url"] for item in bundle["link"] if item["relation"] == relation), None)


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# --- Task ---------------------------------------------------------------------------------------


def test_task_unfiltered_is_the_organizations_tasks(client, headers, world):
    t = world.tasks
    assert ids(search(client, headers, "/fhir/Task")) == of(t["one"], t["one_accepted"], t["two"])


def test_task_by_id(client, headers, world):
    t = world.tasks
    bundle = search(client, headers, f"/fhir/Task?_id={t['two'].public_id}")
    assert ids(bundle) == of(t["two"]) and bundle["total"] == 1
    both = search(client, headers, f"/fhir/Task?_id={t['one'].public_id},{t['two'].public_id}")  # comma: OR
    assert ids(both) == of(t["one"], t["two"])


def test_task_by_identifier(client, headers, world):
    wanted = world.tasks["one_accepted"]
    for value in (f"{REFERENCE}|{wanted.reference}", wanted.reference):
        bundle = search(client, headers, f"/fhir/Task?identifier={value}")
        assert ids(bundle) == of(wanted) and bundle["total"] == 1, value


def test_task_identifier_of_another_system_matches_nothing(client, headers, world):
    reference = world.tasks["one"].reference
    assert ids(search(client, headers, f"/fhir/Task?identifier=urn:other|{reference}")) == set()
    assert ids(search(client, headers, f"/fhir/Task?identifier=|{reference}")) == set()  # no system: none of ours


@pytest.mark.parametrize("parameter", ["patient", "subject"])
def test_task_by_patient(client, headers, world, parameter):
    t = world.tasks
    for form in ("Patient/{id}", "{id}", BASE + "/Patient/{id}"):
        bundle = search(client, headers, f"/fhir/Task?{parameter}={form.format(id=world.one.public_id)}")
        assert ids(bundle) == of(t["one"], t["one_accepted"]), form
        assert {e["resource"]["for"]["reference"] for e in bundle["entry"]} == {f"Patient/{world.one.public_id}"}
    assert ids(search(client, headers, f"/fhir/Task?{parameter}={world.two.public_id}")) == of(t["two"])


def test_task_by_status(client, headers, world):
    t = world.tasks
    assert ids(search(client, headers, "/fhir/Task?status=requested")) == of(t["one"])
    assert ids(search(client, headers, "/fhir/Task?status=http://hl7.org/fhir/task-status|in-progress")) == of(t["two"])
    assert ids(search(client, headers, "/fhir/Task?status=requested,accepted")) == of(t["one"], t["one_accepted"])
    assert ids(search(client, headers, "/fhir/Task?status=completed")) == set()  # a real code, no such task


def test_task_parameters_combine_with_and(client, headers, world):
    t = world.tasks
    path = f"/fhir/Task?patient={world.one.public_id}&status=accepted"
    assert ids(search(client, headers, path)) == of(t["one_accepted"])
    path = f"/fhir/Task?patient={world.one.public_id}&status=in-progress"
    assert ids(search(client, headers, path)) == set()
    path = "/fhir/Task?status=requested,accepted,in-progress&status=accepted,in-progress"  # repeated: AND
    assert ids(search(client, headers, path)) == of(t["one_accepted"], t["two"])


# --- Observation --------------------------------------------------------------------------------


def test_observation_unfiltered_is_the_consented_scores(client, headers, world):
    s = world.scores
    assert ids(search(client, headers, "/fhir/Observation")) == of(s["one_nprs"], s["one_odi"], s["two_nprs"])


@pytest.mark.parametrize("parameter", ["patient", "subject"])
def test_observation_by_patient(client, headers, world, parameter):
    s = world.scores
    bundle = search(client, headers, f"/fhir/Observation?{parameter}=Patient/{world.one.public_id}")
    assert ids(bundle) == of(s["one_nprs"], s["one_odi"])
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{world.one.public_id}"}
    assert ids(search(client, headers, f"/fhir/Observation?{parameter}={world.two.public_id}")) == of(s["two_nprs"])


def test_observation_by_id(client, headers, world):
    wanted = world.scores["two_nprs"]
    assert ids(search(client, headers, f"/fhir/Observation?_id={wanted.public_id}")) == of(wanted)


CODES = [
    (f"{LOINC}|72514-3", {"one_nprs", "two_nprs"}),
    ("72514-3", {"one_nprs", "two_nprs"}),
    (f"{INSTRUMENT}|ODI", {"one_odi"}),
    ("ODI", {"one_odi"}),
    (f"{INSTRUMENT}|", {"one_nprs", "one_odi", "two_nprs"}),
    (f"{LOINC}|", {"one_nprs", "one_odi", "two_nprs"}),
    (f"{LOINC}|97909-6", {"one_odi"}),  # ODI's own LOINC code
    (f"{LOINC}|ODI", set()),
    (f"{INSTRUMENT}|NPRS,{INSTRUMENT}|ODI", {"one_nprs", "one_odi", "two_nprs"}),
]


def test_observation_by_code(client, headers, world):
    for value, wanted in CODES:
        bundle = search(client, headers, f"/fhir/Observation?code={value}")
        assert ids(bundle) == of(*(world.scores[name] for name in wanted)), value


OBSERVATION_DATES = [
    ("2026-01-05", {"one_nprs"}),
    ("2026-01", {"one_nprs", "two_nprs"}),
    ("gt2026-01-05", {"one_odi", "two_nprs"}),
    ("ge2026-01-07", {"one_odi", "two_nprs"}),
    ("lt2026-01-07", {"one_nprs"}),
    ("le2026-01-07", {"one_nprs", "two_nprs"}),
    ("2026-01-05,2026-02", {"one_nprs", "one_odi"}),
]


def test_observation_by_date(client, headers, world):
    for value, wanted in OBSERVATION_DATES:
        bundle = search(client, headers, f"/fhir/Observation?date={value}")
        assert ids(bundle) == of(*(world.scores[name] for name in wanted)), value


def test_observation_date_bounds_and_the_practice_day(client, headers, world):
    s = world.scores
    path = "/fhir/Observation?date=ge2026-01-06&date=lt2026-02-01"  # repeated: AND
    assert ids(search(client, headers, path)) == of(s["two_nprs"])
    # 5 January (one_nprs) ends at the practice's midnight, not UTC's: a dateTime is compared with that day.
    end_of_day = datetime(2026, 1, 6, tzinfo=PRACTICE_ZONE).astimezone(UTC)
    two_minutes_before = (end_of_day - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    at_midnight = end_of_day.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = of(s["one_odi"], s["two_nprs"])
    assert ids(search(client, headers, f"/fhir/Observation?date=gt{two_minutes_before}")) == later | of(s["one_nprs"])
    assert ids(search(client, headers, f"/fhir/Observation?date=ge{at_midnight}")) == later
    assert ids(search(client, headers, f"/fhir/Observation?date=lt{at_midnight}")) == of(s["one_nprs"])


def test_observation_by_status(client, headers, world):
    s = world.scores
    assert ids(search(client, headers, "/fhir/Observation?status=final")) == of(
        s["one_nprs"], s["one_odi"], s["two_nprs"]
    )
    assert ids(search(client, headers, "/fhir/Observation?status=preliminary")) == set()


def test_observation_by_based_on(client, headers, world):
    s, t = world.scores, world.tasks
    path = f"/fhir/Observation?based-on=ServiceRequest/{t['one_accepted'].public_id}"
    assert ids(search(client, headers, path)) == of(s["one_odi"])
    path = f"/fhir/Observation?based-on={t['one'].public_id},{t['two'].public_id}"
    assert ids(search(client, headers, path)) == of(s["one_nprs"], s["two_nprs"])


CATEGORIES = [
    ("survey", {"one_nprs", "one_odi", "two_nprs"}),
    (f"{OBSERVATION_CATEGORY}|survey", {"one_nprs", "one_odi", "two_nprs"}),
    (f"{PHASE}|discharge", {"one_odi"}),
    ("intake", {"one_nprs", "two_nprs"}),
    ("exam", set()),
]


def test_observation_by_category(client, headers, world):
    for value, wanted in CATEGORIES:
        bundle = search(client, headers, f"/fhir/Observation?category={value}")
        assert ids(bundle) == of(*(world.scores[name] for name in wanted)), value


def test_observation_combined(client, headers, world):
    path = f"/fhir/Observation?patient={world.one.public_id}&code=72514-3&date=ge2026-01-01"
    assert ids(search(client, headers, path)) == of(world.scores["one_nprs"])


def test_observation_filter_never_widens_the_consent(client, headers, world, org_a, clinician_a):
    """A score the consent policy hides stays hidden whatever the filter names."""
    silent = factories.make_patient("Quiet")
    referral = factories.make_referral(org_a, clinician_a, patient=silent)
    hidden = _score(referral, factories.make_user(Role.STAFF), "NPRS", Phase.INTAKE, date(2026, 1, 5))
    add_consent(referral, categories=(Category.PROGRESS_NOTES,))  # not scores
    for path in (
        f"/fhir/Observation?patient={silent.public_id}",
        f"/fhir/Observation?_id={hidden.public_id}",
        f"/fhir/Observation?based-on={referral.public_id}",
    ):
        assert search(client, headers, path)["total"] == 0


# --- DocumentReference --------------------------------------------------------------------------


@pytest.mark.parametrize("parameter", ["patient", "subject"])
def test_document_reference_by_patient(client, headers, world, parameter):
    d = world.docs
    bundle = search(client, headers, f"/fhir/DocumentReference?{parameter}=Patient/{world.one.public_id}")
    assert ids(bundle) == of(d["one_note"], d["one_discharge"])
    assert ids(search(client, headers, f"/fhir/DocumentReference?{parameter}={world.two.public_id}")) == of(
        d["two_note"]
    )


def test_document_reference_by_id_status_and_category(client, headers, world):
    d = world.docs
    assert ids(search(client, headers, f"/fhir/DocumentReference?_id={d['two_note'].public_id}")) == of(d["two_note"])
    mine = of(d["one_note"], d["one_discharge"], d["two_note"])
    assert ids(search(client, headers, "/fhir/DocumentReference?status=current")) == mine
    assert ids(search(client, headers, "/fhir/DocumentReference?status=superseded")) == set()
    assert ids(search(client, headers, "/fhir/DocumentReference?category=discharge_summary")) == of(d["one_discharge"])
    path = (
        "/fhir/DocumentReference?category=https://fhir.referral-portal.example/CodeSystem/consent-data-class|"
        "progress_notes"
    )
    assert ids(search(client, headers, path)) == of(d["one_note"], d["two_note"])


DOCUMENT_DATES = [
    ("2026-01-10", {"one_note"}),
    ("2026-01", {"one_note", "two_note"}),
    ("gt2026-01-10", {"one_discharge", "two_note"}),
    ("lt2026-01-12T15:00:00Z", {"one_note"}),
    ("le2026-01-12T15:00:00Z", {"one_note", "two_note"}),
    ("ge2026-03-01T09:00:00-06:00", {"one_discharge"}),
    ("ge2026-03-01T16:00:00%2B01:00", {"one_discharge"}),
    ("gt2026-03-01T16:00:00%2B01:00", set()),
]


def test_document_reference_by_date(client, headers, world):
    for value, wanted in DOCUMENT_DATES:
        bundle = search(client, headers, f"/fhir/DocumentReference?date={value}")
        assert ids(bundle) == of(*(world.docs[name] for name in wanted)), value


# --- Consent ------------------------------------------------------------------------------------


def test_consent_by_patient_id_and_status(client, headers, world):
    c = world.consents
    assert ids(search(client, headers, "/fhir/Consent")) == of(c["one"], c["two"])
    assert ids(search(client, headers, f"/fhir/Consent?patient=Patient/{world.two.public_id}")) == of(c["two"])
    assert ids(search(client, headers, f"/fhir/Consent?_id={c['one'].public_id}")) == of(c["one"])
    assert ids(search(client, headers, "/fhir/Consent?status=active")) == of(c["one"], c["two"])
    assert ids(search(client, headers, "/fhir/Consent?status=inactive")) == set()


# --- another organization -----------------------------------------------------------------------


def test_another_organizations_patient_is_an_empty_bundle(client, headers, world):
    for kind, params in SEARCH_PARAMS.items():
        for parameter in {"patient", "subject"} & set(params):
            bundle = search(client, headers, f"/fhir/{kind}?{parameter}=Patient/{world.other.public_id}")
            assert bundle["total"] == 0 and ids(bundle) == set(), (kind, parameter)


def test_another_organizations_ids_are_never_found(client, headers, world):
    other_task, other_score = world.tasks["other"], world.scores["other_nprs"]
    for path in (
        f"/fhir/Task?_id={other_task.public_id}",
        f"/fhir/Task?identifier={other_task.reference}",
        f"/fhir/Observation?_id={other_score.public_id}",
        f"/fhir/Observation?based-on={other_task.public_id}",
        f"/fhir/DocumentReference?_id={world.docs['other_note'].public_id}",
        f"/fhir/Consent?_id={world.consents['other'].public_id}",
    ):
        assert search(client, headers, path)["total"] == 0, path


def test_unknown_ids_of_the_right_shape_match_nothing(client, headers, world):
    for path in (
        f"/fhir/Task?_id={uuid.uuid4()}",
        "/fhir/Task?_id=not-one-of-ours",
        "/fhir/Task?patient=12345",
        "/fhir/Task?patient=https://ehr.example/fhir/Patient/" + str(world.one.public_id),
        "/fhir/Observation?subject=Group/" + str(world.one.public_id),
        "/fhir/Task?identifier=RB-NOSUCH1",
    ):
        assert search(client, headers, path)["total"] == 0, path


# --- malformed values, modifiers, handling ------------------------------------------------------

MALFORMED = [
    ("/fhir/Task?patient=Practitioner/123", "patient"),
    ("/fhir/Task?patient=Patient/", "patient"),
    ("/fhir/Task?patient=Patient/1/_history/2", "patient"),
    ("/fhir/Task?subject=not%20an%20id", "subject"),
    ("/fhir/Task?_id=a%20b", "_id"),
    ("/fhir/Task?identifier=a|b|c", "identifier"),
    ("/fhir/Task?identifier=|", "identifier"),
    ("/fhir/Task?status=in_progress", "status"),
    ("/fhir/Task?status=http://hl7.org/fhir/task-status|done", "status"),
    ("/fhir/Task?identifier=RB-%01", "identifier"),
    ("/fhir/Observation?code=a|b|c", "code"),
    ("/fhir/Observation?status=finished", "status"),
    ("/fhir/Observation?date=5%20January", "date"),
    ("/fhir/Observation?date=ne2026-01-05", "date"),
    ("/fhir/Observation?date=0001-01-01T00:00:00Z", "date"),  # before the first day at the practice
    ("/fhir/Observation?date=9999-12-31T23:59:59.999999Z", "date"),
    ("/fhir/Observation?based-on=Patient/123", "based-on"),
    ("/fhir/Observation?subject=Practitioner/123", "subject"),
    ("/fhir/DocumentReference?status=final", "status"),
    ("/fhir/DocumentReference?date=2026-13", "date"),
    ("/fhir/Consent?status=revoked", "status"),
    ("/fhir/Consent?patient=Group/1", "patient"),
    ("/fhir/Task?_pretty=yes", "_pretty"),
    ("/fhir/Task?_count=5&_count=6", "_count"),
]


def test_malformed_values_are_400_naming_the_parameter(client, headers):
    for path, parameter in MALFORMED:
        outcome = search(client, headers, path, status=400)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == [parameter], path


def test_a_modifier_is_refused_under_any_handling(client, headers):
    for prefer in ({}, {"Prefer": "handling=lenient"}, {"Prefer": "handling=strict"}):
        outcome = search(client, headers, "/fhir/Task?patient:missing=true", status=400, **prefer)
        assert outcome["issue"][0]["expression"] == ["patient:missing"]
        assert outcome["issue"][0]["code"] == "not-supported"


def test_strict_handling_refuses_each_unsupported_parameter(client, headers, world):
    path = f"/fhir/Observation?patient={world.one.public_id}&_sort=date&performer=Practitioner/1"
    response = client.get(path, headers={**headers, "Prefer": "return=minimal, handling=strict"})
    assert response.status_code == 400
    assert response.headers["Preference-Applied"] == "handling=strict"
    outcome = response.get_json()
    assert_valid_fhir(outcome)
    assert [i["expression"] for i in outcome["issue"]] == [["_sort"], ["performer"]]
    assert all(i["code"] == "not-supported" for i in outcome["issue"])
    # A parameter of another resource is unsupported here too; supported ones pass under strict handling.
    assert client.get("/fhir/Consent?code=ODI", headers={**headers, "Prefer": "handling=strict"}).status_code == 400
    bundle = search(
        client, headers, f"/fhir/Observation?patient={world.one.public_id}&_count=1", Prefer="handling=strict"
    )
    assert bundle["total"] == 2


def test_lenient_handling_drops_unsupported_parameters_from_the_self_link(client, headers, world):
    path = (
        f"/fhir/Task?_summary=count&patient=Patient/{world.one.public_id}&foo=bar&status=&"
        f"_format=application/fhir%2Bjson&_count=10"
    )
    for prefer in (None, "handling=lenient"):  # lenient is the default
        response = client.get(path, headers={**headers, **({"Prefer": prefer} if prefer else {})})
        assert response.status_code == 200
        bundle = response.get_json()
        assert_valid_fhir(bundle)
        assert ids(bundle) == of(world.tasks["one"], world.tasks["one_accepted"])
        # Only what was applied: not _summary or foo (unsupported), not status (empty, so ignored).
        assert query_of(link(bundle, "self")) == [
            ("patient", f"Patient/{world.one.public_id}"),
            ("_format", "application/fhir+json"),
            ("_count", "10"),
        ]
        assert response.headers.get("Preference-Applied") == ("handling=lenient" if prefer else None)


def test_self_link_without_parameters(client, headers, world):
    bundle = search(client, headers, "/fhir/Task?unknown=1")
    assert link(bundle, "self") == f"{BASE}/Task"


def test_format_other_than_json_is_406(client, headers, world):
    outcome = search(client, headers, "/fhir/Task?_format=xml", status=406)
    assert outcome["issue"][0]["expression"] == ["_format"]
    assert search(client, headers, "/fhir/Task?_format=json")["total"] == 3


def test_pretty(client, headers, world):
    response = client.get("/fhir/Consent?_pretty=true", headers=headers)
    assert response.status_code == 200 and b'\n  "resourceType": "Bundle"' in response.data
    assert b"\n" not in client.get("/fhir/Consent?_pretty=false", headers=headers).data


# --- paging with filters ------------------------------------------------------------------------


def test_paging_with_a_filter_never_repeats_or_skips_and_keeps_the_filter(client, headers, org_a, clinician_a, world):
    extra = [factories.make_referral(org_a, clinician_a, patient=world.one) for _ in range(3)]
    wanted = of(world.tasks["one"], world.tasks["one_accepted"], *extra)  # five of patient 1, one of patient 2
    path = f"/fhir/Task?patient=Patient/{world.one.public_id}&status=requested,accepted&_count=2"
    bundle = search(client, headers, path)
    assert bundle["total"] == 5
    seen, pages = [e["resource"]["id"] for e in bundle["entry"]], 1
    while next_link := link(bundle, "next"):
        pairs = query_of(next_link)
        assert ("patient", f"Patient/{world.one.public_id}") in pairs and ("status", "requested,accepted") in pairs
        assert ("_count", "2") in pairs
        bundle = search(client, headers, next_link.removeprefix("http://127.0.0.1:5000"))
        assert ("_cursor", dict(pairs)["_cursor"]) in query_of(link(bundle, "self"))
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 5 and set(seen) == wanted


# --- what the server says about itself ----------------------------------------------------------

# One working example per advertised parameter: adding a parameter without a test here fails.
SAMPLES = {
    "_id": lambda w: str(w.tasks["one"].public_id),
    "_lastUpdated": lambda w: "ge2020-01-01",
    "identifier": lambda w: w.tasks["one"].reference,
    "patient": lambda w: f"Patient/{w.one.public_id}",
    "subject": lambda w: f"Patient/{w.one.public_id}",
    "status": None,
    "code": lambda w: "ODI",
    "date": lambda w: "ge2020-01-01",
    "based-on": lambda w: f"ServiceRequest/{w.tasks['one'].public_id}",
    "category": lambda w: "survey",
}
STATUS = {
    "Task": "requested",
    "Observation": "final",
    "DocumentReference": "current",
    "Consent": "active",
    "Subscription": "active",
}


def test_capability_statement_advertises_exactly_what_works(client, headers, world):
    statement = client.get("/fhir/metadata").get_json()
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] not in SEARCH_PARAMS:
            assert "searchParam" not in resource
            continue
        kind = resource["type"]
        advertised = {p["name"]: p["type"] for p in resource["searchParam"]}
        assert set(advertised) == set(SEARCH_PARAMS[kind]) | {"_count"}
        assert set(SEARCH_PARAMS[kind]) <= set(SAMPLES)
        for name in SEARCH_PARAMS[kind]:
            value = STATUS[kind] if name == "status" else SAMPLES[name](world)
            response = client.get(
                f"/fhir/{kind}", query_string={name: value}, headers={**headers, "Prefer": "handling=strict"}
            )
            assert response.status_code == 200, (kind, name, response.get_json())
            assert (name, value) in query_of(link(response.get_json(), "self"))
        # Standard R4 parameters this server does not support are refused under strict handling.
        for name in ("_sort", "_include", "_elements", "_summary", "_total", "_text", "_has"):
            response = client.get(f"/fhir/{kind}?{name}=x", headers={**headers, "Prefer": "handling=strict"})
            assert response.status_code == 400, (kind, name)


def test_openapi_lists_the_same_parameters(client):
    description = client.get("/fhir/openapi.json").get_json()
    for kind, params in SEARCH_PARAMS.items():
        listed = {p["name"] for p in description["paths"][f"/fhir/{kind}"]["get"]["parameters"]}
        assert listed == set(params) | {"_count", "_cursor", "_format", "_pretty", "Prefer"}


def test_a_filtered_search_is_audited_as_before(client, headers, world):
    client.get(f"/fhir/Observation?patient={world.one.public_id}&code=ODI", headers=headers)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "phi.disclosed")).all()
    assert [e.patient_id for e in events] == [world.one.public_id]
    search_event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api.read"))
    assert search_event.detail["search"] == "code,patient" and str(search_event.detail["returned"]) == "1"
