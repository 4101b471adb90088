"""Demo second factors: the practice's demo users share one published authenticator key.

For `make run` only; `flask portal demo-logins` prints the key and `flask portal demo-code`
the current code, so the demo can be tried without a phone.
"""

from sqlalchemy import select

from portal.accounts.models import User
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.mfa import totp
from portal.mfa.models import TotpCredential

DEMO_TOTP_SECRET = b"riverbend-demo-totp!"  # 20 bytes; public on purpose, like DEMO_PASSWORD


def demo_totp_key() -> str:
    return totp.to_base32(DEMO_TOTP_SECRET)


def enrol_demo_practice_users() -> None:
    """Staff and admins must use a second factor: give the demo ones the published key."""
    for user in db.session.scalars(select(User).where(User.role.in_([Role.STAFF, Role.ADMIN]))):
        credential = TotpCredential(user_id=user.id, confirmed_at=now_utc())
        credential.secret = DEMO_TOTP_SECRET
        db.session.add(credential)
    db.session.flush()
