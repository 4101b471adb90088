"""Second factor: TOTP (RFC 6238), recovery codes, trusted devices and the sign-in step they add."""
