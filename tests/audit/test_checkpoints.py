"""Signed, chained checkpoints against someone who can write the whole database but holds none of
the portal's secrets: the probes of issue 17, the upgrade from the old checkpoint scheme, PHI key
rotation, the heartbeat and the age of the newest checkpoint (docs/security.md, "Audit trail")."""

import os
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from portal.audit import chain
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.services import AuditAction, record
from portal.core.phi import Keyring, current_state, using
from portal.core.time import now_utc
from portal.extensions import db as _db
from tests import factories


def _checkpoints() -> list[AuditCheckpoint]:
    return list(_db.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


def _add_events(n: int, label: str = "x") -> None:
    for i in range(n):
        record(AuditAction.PHI_READ, view=f"{label}-{i}")
    _db.session.flush()


@pytest.fixture
def rounds(db):
    """Four seals of three events each: four checkpoints, each chained to the one before."""
    factories.make_user("staff")
    for r in range(4):
        _add_events(3, f"round-{r}")
        chain.seal()
    seqs = [c.seq for c in _checkpoints()]
    assert len(seqs) == 4 and seqs[1:] == [seqs[0] + 3, seqs[0] + 6, seqs[0] + 9]
    assert all(c.key_fingerprint.startswith("v2:1:") and len(c.key_fingerprint) == 16 for c in _checkpoints())
    assert chain.verify().ok
    return seqs


def _rechain(from_seq: int) -> None:
    """What the attacker can always do: recompute every content and chain hash from a sequence on."""
    before = _db.session.scalar(select(AuditEvent).where(AuditEvent.seq == from_seq - 1))
    previous = before.chain_hash if before else chain.GENESIS
    for event in _db.session.scalars(select(AuditEvent).where(AuditEvent.seq >= from_seq).order_by(AuditEvent.seq)):
        _db.session.refresh(event)
        event.content_hash = chain.content_hash(event)
        event.chain_hash = chain.link(previous, event.content_hash)
        previous = event.chain_hash
    _db.session.flush()


def _seal_by_hand(signature: bytes | None = None, fingerprint: str | None = None) -> int:
    """The attacker seals unsealed events himself and, if asked, adds a checkpoint he made up."""
    last = _db.session.scalar(select(AuditEvent).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq.desc()))
    seq, previous = last.seq, last.chain_hash
    for event in _db.session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)):
        seq += 1
        event.seq, event.chain_hash = seq, chain.link(previous, event.content_hash)
        previous = event.chain_hash
    if signature is not None:
        head = _checkpoints()[-1]
        _db.session.add(
            AuditCheckpoint(
                seq=seq,
                chain_hash=previous,
                key_fingerprint=fingerprint or head.key_fingerprint,
                signature=signature,
                created_at=now_utc(),
            )
        )
    _db.session.flush()
    return seq


def _problems(**kwargs) -> str:
    result = chain.verify(**kwargs)
    assert not result.ok
    return " | ".join(result.problems)


def _later(monkeypatch, minutes: float) -> None:
    moved = now_utc() + timedelta(minutes=minutes)
    monkeypatch.setattr(chain, "now_utc", lambda: moved)


# -- probe 1: rewrite from event N, every hash recomputed, the checkpoints from N on deleted ------


def test_probe_rewrite_from_n_with_hashes_recomputed_and_checkpoints_deleted(rounds):
    n = rounds[1] - 1  # an event inside the second round
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == n).values(action="auth.login"))
    _rechain(n)
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq >= n))
    assert "no signed checkpoint covers them" in _problems()


def test_probe_rewrite_with_checkpoints_re_signed_without_the_key(rounds):
    n = rounds[1] - 1
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == n).values(detail={"view": "else"}))
    _rechain(n)
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq >= n))
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq > rounds[0]).values(seq=None, chain_hash=None))
    _seal_by_hand(signature=os.urandom(32))
    assert "forged signature" in _problems()


def test_probe_rewrite_keeping_the_old_checkpoint_rows_is_caught(rounds):
    n = rounds[1] - 1
    _db.session.execute(update(AuditEvent).where(AuditEvent.seq == n).values(action="auth.logout"))
    _rechain(n)
    for cp in _checkpoints():  # point each checkpoint at the rewritten chain; the signatures stay
        cp.chain_hash = _db.session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == cp.seq))
    _db.session.flush()
    assert "forged signature" in _problems()


def test_a_checkpoint_removed_from_the_middle_is_caught(rounds):
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[1]))
    problems = _problems()
    assert f"checkpoint at sequence {rounds[2]} has a forged signature" in problems
    assert f"before it (sequence {rounds[0]}) was removed" in problems


# -- probe 2: the tail of events cut off together with its checkpoints -----------------------------


def test_probe_truncated_tail_fails_once_no_newer_checkpoint_appears(rounds, monkeypatch):
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq > rounds[1]))
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > rounds[1]))
    # Without the checkpoint log a fresh cut looks like a trail that just ended (the documented limit) ...
    assert chain.verify().ok
    # ... until the newest checkpoint is older than the sealer would ever let it get.
    _later(monkeypatch, 16)
    assert f"the newest checkpoint (sequence {rounds[1]}) is 16 minutes old" in _problems()
    assert chain.verify(max_age=timedelta(0)).ok  # 0 turns the rule off (a restored backup)


def test_events_cut_off_without_their_checkpoints_are_caught(rounds):
    _db.session.execute(delete(AuditEvent).where(AuditEvent.seq > rounds[2]))
    assert f"checkpoint at sequence {rounds[3]} refers to events that are missing" in _problems()


# -- probe 3: well-formed events appended after the last checkpoint --------------------------------


def test_probe_appended_and_sealed_by_hand_without_a_checkpoint(rounds):
    _add_events(2, "forged")
    _seal_by_hand()
    assert f"events at sequence {rounds[3] + 1} to {rounds[3] + 2} are sealed but no signed checkpoint" in _problems()


def test_probe_appended_with_a_made_up_checkpoint(rounds):
    _add_events(2, "forged")
    _seal_by_hand(signature=os.urandom(32))
    assert f"checkpoint at sequence {rounds[3] + 2} has a forged signature" in _problems()


def test_probe_appended_with_a_replayed_signature(rounds):
    _add_events(1, "forged")
    _seal_by_hand(signature=_checkpoints()[-1].signature)
    assert "forged signature" in _problems()


def test_probe_appended_with_an_old_scheme_checkpoint(rounds):
    _add_events(1, "forged")
    _seal_by_hand(signature=os.urandom(32), fingerprint="0123456789abcdef")
    assert "uses the old scheme with a key this portal does not hold" in _problems()


def test_probe_appended_unsealed_rows_with_an_old_time_are_reported(rounds):
    event = record(AuditAction.LOGIN)
    event.occurred_at = now_utc() - timedelta(hours=1)
    event.content_hash = chain.content_hash(event)
    _db.session.flush()
    assert "still unsealed" in _problems()


# -- the single-row cases and the signature ---------------------------------------------------------


def test_a_forged_checkpoint_signature_is_caught(rounds):
    _db.session.execute(
        update(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[3]).values(signature=os.urandom(32))
    )
    assert f"checkpoint at sequence {rounds[3]} has a forged signature" in _problems()


def test_a_checkpoint_cannot_be_made_to_look_fresh(rounds, monkeypatch):
    _later(monkeypatch, 16)
    _db.session.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[3]).values(created_at=now_utc()))
    assert "forged signature" in _problems()


def test_an_inserted_checkpoint_is_caught(rounds):
    genuine = _checkpoints()[1]
    chain_hash = _db.session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == genuine.seq + 1))
    _db.session.add(
        AuditCheckpoint(
            seq=genuine.seq + 1,
            chain_hash=chain_hash,
            key_fingerprint=genuine.key_fingerprint,
            signature=genuine.signature,
            created_at=genuine.created_at,
        )
    )
    _db.session.flush()
    problems = _problems()
    assert f"checkpoint at sequence {genuine.seq + 1} has a forged signature" in problems
    assert f"checkpoint at sequence {rounds[2]} has a forged signature" in problems


def test_a_stray_checkpoint_beyond_the_chain_is_reported_and_not_chained_onto(rounds):
    head = _checkpoints()[-1]
    _db.session.add(
        AuditCheckpoint(
            seq=10**6,
            chain_hash=head.chain_hash,
            key_fingerprint=head.key_fingerprint,
            signature=os.urandom(32),
            created_at=now_utc(),
        )
    )
    _db.session.flush()
    assert "checkpoint at sequence 1000000 refers to events that are missing" in _problems()
    _add_events(1)
    chain.seal()  # chains onto the real head, not onto the stray row
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq == 10**6))
    assert chain.verify().ok


def test_an_unknown_scheme_is_refused(rounds):
    _db.session.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[3]).values(key_fingerprint="none"))
    assert "unknown signature scheme" in _problems()


# -- the heartbeat and the age of the newest checkpoint ---------------------------------------------


def test_a_quiet_trail_gets_a_heartbeat_checkpoint(rounds, monkeypatch):
    assert chain.seal() == 0  # fresh: nothing to do
    _later(monkeypatch, 6)  # more than a third of the 15 minutes allowed
    assert chain.seal() == 1 and chain.seal() == 0
    beat = _db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
    assert beat.action == chain.HEARTBEAT_ACTION and beat.seq == rounds[3] + 1
    assert _checkpoints()[-1].seq == beat.seq
    assert chain.verify().ok


def test_a_stopped_sealer_makes_verify_fail(rounds, monkeypatch):
    _later(monkeypatch, 30)
    assert "30 minutes old, more than the 15 allowed" in _problems()
    assert chain.verify(max_age=timedelta(minutes=45)).ok


def test_a_long_gap_between_checkpoints_is_a_warning(rounds, monkeypatch):
    _later(monkeypatch, 40)  # the sealer was down for 40 minutes, or checkpoints were removed
    _add_events(1)
    chain.seal()
    result = chain.verify()
    assert result.ok and len(result.warnings) == 1 and "only the checkpoint log" in result.warnings[0]


# -- the upgrade from the old scheme (HMAC under SECRET_KEY, not chained) ----------------------------


def _as_old_scheme(*seqs: int, secret: bytes | None = None) -> None:
    """Rewrite checkpoints as the sealer before the upgrade wrote them."""
    fingerprint, key = chain._legacy_key()
    if secret is not None:
        fingerprint, key = "f" * 16, secret
    for cp in _checkpoints():
        if cp.seq in seqs:
            cp.key_fingerprint = fingerprint
            cp.signature = chain._legacy_signature(key, cp.seq, cp.chain_hash)
    _db.session.flush()


def test_old_scheme_checkpoints_keep_verifying_and_the_next_seal_chains_onto_them(rounds):
    _as_old_scheme(*rounds)
    assert chain.verify().ok  # the newest checkpoint is an old one: checked under SECRET_KEY
    _add_events(2)
    chain.seal()
    newest = _checkpoints()[-1]
    assert newest.key_fingerprint.startswith("v2:") and chain.verify().ok
    _db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[3]))
    assert "forged signature" in _problems()  # the first new checkpoint covers the last old one


def test_an_old_scheme_forgery_is_caught(rounds):
    _as_old_scheme(*rounds)
    _db.session.execute(
        update(AuditCheckpoint).where(AuditCheckpoint.seq == rounds[1]).values(signature=os.urandom(32))
    )
    assert f"checkpoint at sequence {rounds[1]} has a forged signature (old scheme)" in _problems()


def test_old_checkpoints_under_an_earlier_secret_key_need_a_new_one_after_them(rounds):
    _as_old_scheme(*rounds, secret=os.urandom(32))
    assert "signed under an earlier SECRET_KEY" in _problems()
    _add_events(1)
    chain.seal()
    assert chain.verify().ok


def test_an_old_sealer_still_running_during_the_upgrade(rounds):
    _as_old_scheme(rounds[3])  # written by the old sealer after the new one's first checkpoints
    assert "old scheme after chained checkpoints began" in _problems()
    _add_events(1)
    chain.seal()  # the new sealer chains over it and vouches for it
    assert chain.verify().ok


def test_an_old_scheme_checkpoint_under_an_unknown_key_after_the_upgrade_is_refused(rounds):
    _as_old_scheme(rounds[2], secret=os.urandom(32))
    assert "old scheme with a key this portal does not hold" in _problems()


# -- PHI key rotation --------------------------------------------------------------------------------


def _rotated(keyring: Keyring) -> tuple[Keyring, int]:
    ring, new = keyring.with_new_key("data")
    return ring.promoted(new.id), new.id


def test_a_promoted_key_signs_and_retiring_the_old_one_keeps_the_chain_verifiable(rounds):
    ring, new_id = _rotated(current_state().keyring)
    with using(ring):
        assert chain.verify().ok  # the old key is decrypt-only: still checked
        _add_events(1)
        chain.seal()
        assert _checkpoints()[-1].key_fingerprint.startswith(f"v2:{new_id}:")
        assert chain.verify().ok
    with using(ring.retired(1)):
        # Key 1's checkpoints can no longer be checked one by one; the first one under the new key
        # covers the last of them and pins every event before it.
        assert chain.verify().ok


def test_the_newest_checkpoint_must_be_checkable(rounds):
    ring, _ = _rotated(current_state().keyring)
    with using(ring.retired(1)):
        assert "its PHI key 1 is retired or not in this keyring" in _problems()
        _add_events(1)
        chain.seal()
        assert chain.verify().ok


def test_a_key_older_than_one_already_used_cannot_sign(rounds):
    ring, new_id = _rotated(current_state().keyring)
    with using(ring):
        _add_events(1)
        chain.seal()
    back = ring.promoted(1)  # an old (perhaps leaked) key signing after the newer one
    with using(back):
        _add_events(1)
        chain.seal()
        assert f"signed with PHI key 1 after checkpoints signed with the newer key {new_id}" in _problems()


def test_another_keyring_is_told_apart_from_a_forgery(rounds):
    with using(Keyring.generate()):
        assert "names PHI key 1 of another keyring" in _problems()


def test_the_checkpoint_key_is_not_a_field_key(db):
    keyring = current_state().keyring
    key_id, key = keyring.purpose_key(chain.CHECKPOINT_PURPOSE)
    assert key_id == keyring.active("data").id and len(key) == 32
    assert key != keyring.purpose_key("something else")[1]
    assert keyring.purpose_key(chain.CHECKPOINT_PURPOSE, keyring.active("blind-index").id) is None
