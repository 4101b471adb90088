"""The audit chain: sealing, and catching every kind of tampering done directly in SQL."""

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from portal.audit import chain
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.services import AuditAction, record
from portal.core.time import now_utc
from portal.extensions import db as _db
from tests import factories


@pytest.fixture
def sealed(db):
    user = factories.make_user("staff")
    for i in range(6):
        record(AuditAction.PHI_READ, actor=user, view=f"page-{i}")
    _db.session.flush()
    chain.seal()
    events = _db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return events


def test_intact_chain_verifies(sealed):
    result = chain.verify()
    assert result.ok and result.checked == len(sealed)


def test_seal_is_incremental_and_checkpointed(sealed, db):
    record(AuditAction.LOGIN)
    _db.session.flush()
    assert chain.seal() == 1 and chain.seal() == 0
    assert _db.session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc())).seq == len(sealed) + 1
    assert chain.verify().ok


def test_edit_is_caught(sealed, db):
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(action="auth.login"))
    result = chain.verify()
    assert not result.ok and "sequence 3" in result.problems[0] and "altered" in result.problems[0]


def test_delete_is_caught(sealed, db):
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
    result = chain.verify()
    assert not result.ok and "missing" in result.problems[0] and "sequence 4" in result.problems[0]


def test_reorder_is_caught(sealed, db):
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(seq=-2))
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == 5).values(seq=2))
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == -2).values(seq=5))
    result = chain.verify()
    assert not result.ok and "broken link at sequence 2" in result.problems[0]


def test_insert_into_the_middle_is_caught(sealed, db):
    victim = sealed[2]
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq >= 3).values(seq=AuditEvent.seq + 1000))
    forged = AuditEvent(action="auth.login", occurred_at=victim.occurred_at, detail={}, seq=3)
    forged.content_hash = chain.content_hash(forged)
    forged.chain_hash = chain.link(sealed[1].chain_hash, forged.content_hash)  # a careful forger
    _db.session.add(forged)
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq >= 1003).values(seq=AuditEvent.seq - 999))
    result = chain.verify()
    assert not result.ok and ("broken link" in result.problems[0] or "checkpoint" in result.problems[0])


def test_rewriting_the_whole_chain_is_caught_by_the_signed_checkpoint(sealed, db):
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(action="auth.logout"))
    previous = chain.GENESIS
    for event in _db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        _db.session.refresh(event)
        event.content_hash = chain.content_hash(event)
        event.chain_hash = chain.link(previous, event.content_hash)
        previous = event.chain_hash
    _db.session.flush()
    result = chain.verify()
    assert not result.ok and "signed checkpoint" in result.problems[0]


def test_old_unsealed_event_is_reported(sealed, db):
    event = record(AuditAction.LOGIN)
    event.occurred_at = now_utc() - timedelta(hours=1)
    event.content_hash = chain.content_hash(event)
    _db.session.flush()
    result = chain.verify(stale_after=timedelta(minutes=10))
    assert not result.ok and "still unsealed" in result.problems[0]


def test_verify_command_exit_status(app, sealed, db):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(ip_address="10.9.9.9"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "TAMPERING" in result.output


def test_audit_viewer_filters_and_csv_export_is_audited(client, login_as, db):
    admin = login_as("admin")
    staff = factories.make_user("staff")
    record(AuditAction.PHI_READ, actor=staff, view="x")
    _db.session.flush()
    page = client.get(f"/admin/audit?actor={staff.email}&action=phi.read")
    assert page.status_code == 200 and b"phi.read" in page.data and b"<td>auth.login</td>" not in page.data
    export = client.get(f"/admin/audit?actor={staff.email}&format=csv")
    assert export.mimetype == "text/csv" and staff.email in export.data.decode()
    exported = _db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.exported"))
    assert exported.actor_id == admin.id


def test_bad_filters_are_ignored_not_500(client, login_as):
    login_as("admin")
    assert client.get("/admin/audit?since=yesterday&patient=not-a-uuid").status_code == 200
