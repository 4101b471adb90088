"""Per-user choices: immediately, daily or weekly digest, or off; security notices always go."""

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.notifications.catalog import Category
from portal.notifications.models import DeliveryMode, NotificationPreference, OutboxMessage, OutboxState
from portal.notifications.rendering import render
from portal.notifications.services import enqueue, fold_digest, set_preferences
from tests import factories

REF = {"reference": "RB-7KQ2M9XA", "link": "https://portal.example/r/1"}


def test_default_is_immediately(db):
    user = factories.make_user(Role.PARTNER)
    m = enqueue(user.email, "update_available", **REF)
    assert m.state is OutboxState.PENDING and m.digest_period is None


def test_choices_hold_skip_or_send(db):
    user = factories.make_user(Role.PARTNER)
    set_preferences(
        user,
        {
            Category.REFERRAL_UPDATES: DeliveryMode.DAILY,
            Category.PROGRESS_UPDATES: DeliveryMode.OFF,
            Category.DIGESTS: DeliveryMode.WEEKLY,
        },
    )
    held = enqueue(user.email.upper(), "referral_status_changed", status_label="Scheduled", **REF)
    skipped = enqueue(user.email, "update_available", **REF)
    weekly = enqueue(
        user.email, "monthly_digest", organization="Org", month="October 2026", referrals=3, seen="<11", mcid_rate="<11"
    )
    assert (held.state, held.digest_period) == (OutboxState.HELD, DeliveryMode.DAILY)
    assert skipped.state is OutboxState.SKIPPED
    assert (weekly.state, weekly.digest_period) == (OutboxState.HELD, DeliveryMode.WEEKLY)


def test_security_notices_always_go(db):
    user = factories.make_user(Role.PARTNER)
    set_preferences(user, dict.fromkeys(Category, DeliveryMode.OFF))
    for template, ctx in [
        ("password_reset", {"link": "x", "minutes": 60}),
        ("mfa_reset", {}),
        ("new_sign_in", {"when": "now", "ip": "203.0.113.1"}),
        ("password_changed", {"when": "now"}),
        ("invite", {"link": "x", "inviter": "A", "organization": "B", "hours": 72}),
    ]:
        assert enqueue(user.email, template, **ctx).state is OutboxState.PENDING, template


def test_unknown_template_is_refused(db):
    import pytest

    from portal.notifications.catalog import UnknownTemplate

    with pytest.raises(UnknownTemplate):
        enqueue("a@example.com", "no_such_template")


def test_dedupe_key_returns_the_existing_message(db):
    first = enqueue("a@example.com", "checkin_due", dedupe_key="k1", organization="O", link="l")
    db.session.flush()
    again = enqueue("a@example.com", "checkin_due", dedupe_key="k1", organization="O", link="l")
    assert again is first
    assert len(db.session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == "k1")).all()) == 1


def test_digest_folds_held_messages_into_one_email(db):
    user = factories.make_user(Role.PARTNER)
    set_preferences(user, {Category.REFERRAL_UPDATES: DeliveryMode.DAILY})
    held = [
        enqueue(user.email, "referral_status_changed", status_label=label, **REF)
        for label in ("Scheduled", "First visit done")
    ]
    other = enqueue(user.email, "update_available", **REF)  # immediately: not folded
    db.session.flush()
    digest = fold_digest(user.email, DeliveryMode.DAILY)
    assert digest.template == "digest" and digest.state is OutboxState.PENDING
    assert [i["subject"] for i in digest.context["items"]] == [
        "Referral RB-7KQ2M9XA: Scheduled",
        "Referral RB-7KQ2M9XA: First visit done",
    ]
    for m in held:
        db.session.refresh(m)
        assert (m.state, m.digest_id) == (OutboxState.SENT, digest.id)
    assert other.state is OutboxState.PENDING
    assert fold_digest(user.email, DeliveryMode.DAILY) is None  # nothing left to fold
    assert fold_digest(user.email, DeliveryMode.WEEKLY) is None


def test_a_digest_keeps_each_messages_figures_and_links(db):
    user = factories.make_user(Role.PARTNER)
    set_preferences(user, {Category.DIGESTS: DeliveryMode.WEEKLY})
    enqueue(user.email, "monthly_digest", organization="Org", month="October 2026", referrals=14, seen=12, mcid_rate=58)
    db.session.flush()
    digest = fold_digest(user.email, DeliveryMode.WEEKLY)
    (item,) = digest.context["items"]
    assert item["subject"] == "Org: your referrals in October 2026"
    assert "Referrals sent:                       14" in item["text"] and "rate:   58%" in item["text"]
    with db.session.no_autoflush:
        out = render(digest.template, digest.context)
    assert "58%" in out.text and "58%" in out.html and "Patients seen" in out.text


def test_digest_command_builds_one_per_recipient(app, db):
    users = [factories.make_user(Role.PARTNER) for _ in range(2)]
    for user in users:
        set_preferences(user, {Category.PROGRESS_UPDATES: DeliveryMode.WEEKLY})
        enqueue(user.email, "update_available", **REF)
        enqueue(user.email, "update_available", **REF)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["outbox", "digest", "--period", "weekly"])
    assert result.exit_code == 0, result.output
    assert "2 weekly digest(s) queued." in result.output
    digests = db.session.scalars(select(OutboxMessage).where(OutboxMessage.template == "digest")).all()
    assert sorted(d.recipient for d in digests) == sorted(u.email for u in users)
    assert all(len(d.context["items"]) == 2 for d in digests)


def test_preferences_page_shows_the_roles_categories_and_saves(client, login_as, db):
    user = login_as("partner")
    page = client.get("/account/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Progress updates" in html and "Staff reminders" not in html
    assert "cannot be turned off" in html
    response = client.post(
        "/account/notifications",
        data={"referral_updates": "weekly", "progress_updates": "off", "digests": "immediately"},
    )
    assert response.status_code == 302
    prefs = dict(
        db.session.execute(
            select(NotificationPreference.category, NotificationPreference.mode).where(
                NotificationPreference.user_id == user.id
            )
        ).all()
    )
    assert prefs == {
        Category.REFERRAL_UPDATES: DeliveryMode.WEEKLY,
        Category.PROGRESS_UPDATES: DeliveryMode.OFF,
        Category.DIGESTS: DeliveryMode.IMMEDIATELY,
    }
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "notifications.preferences_changed"))
    # A partner cannot smuggle in a staff-only category, nor an unknown mode.
    client.post("/account/notifications", data={"referral_updates": "sometimes", "staff_reminders": "off"})
    assert (
        db.session.scalar(
            select(NotificationPreference).where(
                NotificationPreference.user_id == user.id, NotificationPreference.category == Category.STAFF_REMINDERS
            )
        )
        is None
    )


def test_staff_see_staff_reminders(client, login_as):
    login_as("staff")
    html = client.get("/account/notifications").get_data(as_text=True)
    assert "Staff reminders" in html and "Progress updates" not in html
