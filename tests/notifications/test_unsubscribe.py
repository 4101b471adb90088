"""RFC 8058 one-click unsubscribe: a signed https link per recipient and category, working without
signing in, turning off only that category; links built from the configured public address."""

import pytest

from portal.notifications.catalog import Category
from portal.notifications.models import DeliveryMode
from portal.notifications.rendering import build_message
from portal.notifications.services import preferences_of, set_preferences
from portal.notifications.unsubscribe import read_token
from tests import factories

BASE = "https://portal.example.org"
CONTEXT = {"reference": "RB-ABC123", "link": BASE + "/partner/referrals/x", "status_label": "Accepted"}


@pytest.fixture
def public_base(app, monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_BASE_URL", BASE)


def one_click_link(user) -> str:
    msg = build_message(message_id="m1", recipient=user.email, template="referral_status_changed", context=CONTEXT)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = msg["List-Unsubscribe"]
    assert header.startswith(f"<{BASE}/unsubscribe/") and header.endswith(">")
    return header[1:-1]


def test_the_header_is_a_signed_link_from_the_configured_address(db, org_a, public_base):
    user = factories.make_user("partner", org_a)
    link = one_click_link(user)
    assert user.email not in link
    user_id, public_id, category = read_token(link.rpartition("/")[2])
    assert (user_id, public_id, category) == (user.id, user.public_id, Category.REFERRAL_UPDATES)
    assert read_token(link.rpartition("/")[2][:-2] + "xx") is None  # altered: refused


def test_one_click_post_without_signing_in_turns_off_only_that_category(
    app, db, client, org_a, public_base, monkeypatch
):
    user = factories.make_user("partner", org_a)
    set_preferences(user, {Category.PROGRESS_UPDATES: DeliveryMode.WEEKLY})
    path = one_click_link(user).removeprefix(BASE)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)  # the mail provider sends no CSRF token
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    chosen = preferences_of(user)
    assert chosen[Category.REFERRAL_UPDATES] is DeliveryMode.OFF
    assert chosen[Category.PROGRESS_UPDATES] is DeliveryMode.WEEKLY  # untouched
    assert client.post(path).status_code == 200  # again: still fine, still off


def test_opening_the_link_asks_first_and_changes_nothing(db, client, org_a, public_base):
    user = factories.make_user("partner", org_a)
    response = client.get(one_click_link(user).removeprefix(BASE))
    assert response.status_code == 200 and b"Unsubscribe" in response.data
    assert preferences_of(user)[Category.REFERRAL_UPDATES] is DeliveryMode.IMMEDIATELY


@pytest.mark.parametrize("token", ["forged", "WyJ4IiwieSJd.bad-signature"])
def test_a_forged_or_altered_token_is_a_404(db, client, token):
    assert client.post(f"/unsubscribe/{token}").status_code == 404
    assert client.get(f"/unsubscribe/{token}").status_code == 404


def test_security_notices_have_no_unsubscribe_and_digests_point_to_the_settings(db, org_a, public_base):
    user = factories.make_user("partner", org_a)
    security = build_message(
        message_id="m2", recipient=user.email, template="password_changed", context={"when": "today"}
    )
    assert security["List-Unsubscribe"] is None
    digest = build_message(
        message_id="m3", recipient=user.email, template="digest", context={"period": "daily", "items": []}
    )
    assert digest["List-Unsubscribe"] == f"<{BASE}/account/notifications>"
    assert digest["List-Unsubscribe-Post"] is None
