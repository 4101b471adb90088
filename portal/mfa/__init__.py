"""Second factor: TOTP (RFC 6238), passkeys (WebAuthn), recovery codes, trusted devices, where passkeys
are required, and the sign-in step they add."""
