"""Signals: how core tells features, and one feature tells another, that something happened,
without importing them (dependencies point one way: features -> core). Blinker, as Flask's own.

Connected in ``create_app`` (portal/__init__.py, ``register_signals``), so who listens to what is
one list in one place.
"""

from blinker import Namespace

_signals = Namespace()

#: A request was refused with 403 (sender: the app; ``actor``: the signed-in user or None, ``endpoint``).
access_denied = _signals.signal("access-denied")

#: A user's password was set or changed (sender: the user). portal/mfa forgets the remembered browsers.
password_changed = _signals.signal("password-changed")

#: A referral moved along its lifecycle (sender: the referral; ``previous``, ``target``: portal.referrals.lifecycle
#: Status). Sent inside the transaction of the change, so what listeners add commits or rolls back with it:
#: portal/api queues the notifications of the organization's subscriptions to its Tasks' status.
referral_status_changed = _signals.signal("referral-status-changed")
