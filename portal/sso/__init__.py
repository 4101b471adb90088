"""OpenID Connect single sign-on, one identity provider per partner organization."""
