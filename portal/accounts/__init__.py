"""Accounts: users, their passwords, server-side sessions, one-time links and invitations.

The pages people use to sign in and manage their account are in portal/auth (they also
involve the second factor, portal/mfa, which builds on this package)."""
