"""Helpers for the two sign-in steps."""

from types import SimpleNamespace

import pytest

from portal.mfa import totp
from tests import factories


def password_step(client, user, password=factories.PASSWORD):
    return client.post("/auth/login", data={"email": user.email, "password": password})


def code_for(user, offset: int = 0) -> str:
    from portal.mfa.services import confirmed_credential

    return totp.code_at(confirmed_credential(user).secret, totp.time_step() + offset)


@pytest.fixture
def frozen_clock(monkeypatch):
    """Pin the TOTP clock mid-step, so codes a step away stay a step away during the test."""
    now = (totp.time_step() * totp.PERIOD) + 15
    monkeypatch.setattr(totp, "time", SimpleNamespace(time=lambda: now))
    return now
