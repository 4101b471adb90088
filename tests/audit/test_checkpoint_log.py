"""The checkpoint log: every checkpoint appended, after it commits, to a file outside the database
(AUDIT_CHECKPOINT_LOG), and `verify --against FILE`, which catches what the database alone cannot:
a tail cut off, or a rewrite the sealer itself was tricked into signing."""

import json
import logging
import stat
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from portal.audit import chain
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.services import AuditAction, record
from portal.core.time import now_utc
from portal.extensions import db as _db


def _add_events(n: int, label: str = "x") -> None:
    for i in range(n):
        record(AuditAction.PHI_READ, view=f"{label}-{i}")
    _db.session.flush()


def _checkpoints() -> list[AuditCheckpoint]:
    return list(_db.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def log_path(app, monkeypatch, tmp_path):
    path = tmp_path / "audit-checkpoints.log"
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_LOG", str(path))
    return path


@pytest.fixture
def logged(db, log_path):
    """Four seals of three events each, every checkpoint in the log."""
    for r in range(4):
        _add_events(3, f"round-{r}")
        chain.seal()
    seqs = [c.seq for c in _checkpoints()]
    assert [e["seq"] for e in _lines(log_path)] == seqs
    return seqs


def _problems(**kwargs) -> str:
    result = chain.verify(**kwargs)
    assert not result.ok
    return " | ".join(result.problems)


def test_every_checkpoint_is_in_the_log_exactly_as_in_the_database(logged, log_path):
    for entry, cp in zip(_lines(log_path), _checkpoints(), strict=True):
        assert entry == {
            "seq": cp.seq,
            "chain_hash": cp.chain_hash.hex(),
            "key": cp.key_fingerprint,
            "signature": cp.signature.hex(),
            "created_at": cp.created_at.isoformat(timespec="microseconds"),
        }
    assert stat.S_IMODE(log_path.stat().st_mode) & 0o007 == 0  # not readable by other users


def test_a_clean_chain_passes_with_and_without_the_log(logged, log_path):
    assert chain.verify().ok
    result = chain.verify(against=log_path)
    assert result.ok and result.logged == len(logged) and not result.warnings


def test_probe_truncated_tail_is_caught_by_the_log(logged, log_path):
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq > logged[1]))
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > logged[1]))
    assert chain.verify().ok  # the database alone cannot tell (within the allowed age)
    assert f"checkpoint at sequence {logged[2]} is in the checkpoint log but not in the database" in _problems(
        against=log_path
    )


def test_probe_truncated_tail_stays_caught_after_new_seals(logged, log_path, caplog):
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq > logged[1]))
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > logged[1]))
    _add_events(3, "after")
    with caplog.at_level(logging.CRITICAL, logger="portal.audit"):
        chain.seal()  # the sealer notices the log's last checkpoint is gone, and says so
    assert any("no longer in the database" in r.getMessage() for r in caplog.records)
    assert chain.verify().ok
    assert f"checkpoint at sequence {logged[2]} differs from the checkpoint log" in _problems(against=log_path)


def test_probe_rewrite_resealed_by_the_sealer_is_caught_by_the_log(logged, log_path):
    # The cleverest rewrite: edit, unseal from there, delete the checkpoints from there on, and
    # let the sealer sign the result. The database alone cannot tell; the log can.
    n = logged[1] - 1
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == n).values(action="auth.login"))
    for event in _db.session.scalars(select(AuditEvent).where(AuditEvent.seq == n)):
        _db.session.refresh(event)
        event.content_hash = chain.content_hash(event)
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq > logged[0]).values(seq=None, chain_hash=None))
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > logged[0]))
    chain.seal()
    assert chain.verify().ok  # the documented limit without the log (docs/security.md)
    # (Re-sealed in one batch: the log's checkpoint at that sequence is simply gone.)
    assert f"checkpoint at sequence {logged[1]} is in the checkpoint log but not in the database" in _problems(
        against=log_path
    )


def test_the_log_may_lag_one_crash_behind_and_the_next_seal_catches_up(logged, log_path, monkeypatch):
    appended = chain.CheckpointLog.append
    monkeypatch.setattr(chain.CheckpointLog, "append", lambda self, lines, torn: None)  # crash after commit
    _add_events(1)
    chain.seal()
    assert [e["seq"] for e in _lines(log_path)] == logged  # one behind
    assert chain.verify(against=log_path).ok  # a lag younger than the allowed age is no tampering
    monkeypatch.setattr(chain.CheckpointLog, "append", appended)
    _add_events(1)
    chain.seal()
    assert [e["seq"] for e in _lines(log_path)] == [c.seq for c in _checkpoints()]  # caught up, in order
    assert chain.verify(against=log_path).ok


def test_a_log_that_stopped_growing_is_reported(logged, log_path, monkeypatch):
    monkeypatch.setattr(chain.CheckpointLog, "append", lambda self, lines, torn: None)
    _add_events(1)
    chain.seal()
    moved = now_utc() + timedelta(minutes=16)
    monkeypatch.setattr(chain, "now_utc", lambda: moved)
    problems = _problems(against=log_path)
    assert f"checkpoints from sequence {logged[-1] + 1} on are older than 15 minutes and not in the checkpoint log" in (
        problems
    )


def test_a_line_torn_by_a_crash_is_ignored_and_the_next_line_starts_afresh(logged, log_path):
    with log_path.open("a") as fh:
        fh.write('{"seq": 99, "chain_h')
    assert chain.verify(against=log_path).ok
    _add_events(1)
    chain.seal()
    lines = log_path.read_text().splitlines()
    assert lines[-2] == '{"seq": 99, "chain_h' and json.loads(lines[-1])["seq"] == _checkpoints()[-1].seq
    result = chain.verify(against=log_path)  # the torn line, now terminated, is skipped with a warning
    assert result.ok and result.logged == len(logged) + 1 and "not a checkpoint" in result.warnings[0]


def test_a_damaged_line_is_skipped_with_a_warning(logged, log_path):
    text = log_path.read_text().splitlines()
    text[1] = text[1][:20]
    log_path.write_text("\n".join(text) + "\n")
    result = chain.verify(against=log_path)
    assert result.ok and "line 2 of the checkpoint log" in result.warnings[0]


def test_a_log_started_late_is_anchored_on_the_newest_checkpoint(db, app, monkeypatch, tmp_path):
    _add_events(2)
    chain.seal()
    _add_events(2)
    chain.seal()
    path = tmp_path / "late.log"
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_LOG", str(path))
    assert chain.verify(against=path).ok  # nothing logged yet, and nothing old
    _add_events(1)
    chain.seal()
    assert [e["seq"] for e in _lines(path)] == [_checkpoints()[-1].seq]
    assert chain.verify(against=path).ok


def test_an_unwritable_log_does_not_stop_the_sealer(db, app, monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_LOG", str(tmp_path / "missing-dir" / "cp.log"))
    _add_events(2)
    with caplog.at_level(logging.ERROR, logger="portal.audit"):
        assert chain.seal() == 2
    assert any("cannot be opened" in r.getMessage() for r in caplog.records)
    assert chain.verify().ok


def test_each_checkpoint_also_goes_to_the_checkpoints_logger(db, log_path, caplog):
    _add_events(1)
    with caplog.at_level(logging.INFO, logger="portal.audit.checkpoints"):
        chain.seal()
    shipped = [json.loads(r.getMessage()) for r in caplog.records if r.name == "portal.audit.checkpoints"]
    assert shipped == _lines(log_path)


def _cut_after(seq: int) -> None:
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq > seq))
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > seq))


def test_verify_command_against_the_log(app, logged, log_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify", "--against", str(log_path)])
    assert result.exit_code == 0 and f"Compared {len(logged)} lines" in result.output
    assert "The audit chain is intact." in result.output
    # (The command ends its read with a rollback, which undoes a test's uncommitted edits: cut each time.)
    _cut_after(logged[2])
    assert runner.invoke(args=["audit", "verify", "--against", str(log_path)]).exit_code == 1
    _cut_after(logged[2])
    result = runner.invoke(args=["audit", "verify"])  # AUDIT_CHECKPOINT_LOG is the default
    assert result.exit_code == 1 and "TAMPERING" in result.output and "not in the database" in result.output
    verified = _db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.verified")).all()
    assert verified and verified[-1].detail["against_log"] == "True"


def test_verify_command_max_age(app, logged, monkeypatch):
    moved = now_utc() + timedelta(minutes=20)
    monkeypatch.setattr(chain, "now_utc", lambda: moved)
    runner = app.test_cli_runner()
    # (--stale-minutes: each run records an unsealed audit.verified event, 20 minutes old to this clock.)
    assert runner.invoke(args=["audit", "verify", "--stale-minutes", "60"]).exit_code == 1
    assert runner.invoke(args=["audit", "verify", "--stale-minutes", "60", "--max-age-minutes", "30"]).exit_code == 0
    assert runner.invoke(args=["audit", "verify", "--stale-minutes", "60", "--max-age-minutes", "0"]).exit_code == 0
