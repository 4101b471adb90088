"""An OpenID provider for the tests, in this process on loopback: no Node.js and no internet.

A small Flask app served by werkzeug in a thread, so the portal reaches it over real HTTP with
``requests`` as it would reach Okta or Entra ID. It publishes discovery and an RSA key it
generates, and plays the authorization code flow strictly: a registered redirect URI, PKCE S256
checked at the token endpoint, the client secret (basic or post), one use per code, ``iss`` in
the authorization response (RFC 9207), UserInfo, token introspection and an end-session
endpoint. The person who "signs in" is whoever the test put in ``next_person``; ``tamper``
changes the next ID token (claims, header or signing key) to test the portal's checks.
"""

import base64
import hashlib
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server


@dataclass
class FakeProvider:
    issuer: str = ""
    client_id: str = "portal-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=list)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig"}))
    next_person: dict = field(default_factory=dict)  # claims of whoever signs in next
    tamper: dict = field(default_factory=dict)  # claims: {...}, key: another key, header: {...}
    end_session: bool = True
    introspection: bool = True
    discovery_overrides: dict = field(default_factory=dict)
    down: bool = False  # discovery and keys answer 503
    token_delay: float = 0  # seconds the token endpoint hangs before it answers
    codes: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    logouts: list[dict] = field(default_factory=list)
    authorizations: list[dict] = field(default_factory=list)

    def person(self, email: str, sub: str | None = None, **claims) -> dict:
        """Who signs in next (e-mail verified unless the test says otherwise)."""
        self.next_person = {"sub": sub or f"sub-{email}", "email": email, "email_verified": True, **claims}
        return self.next_person

    def discovery(self) -> dict:
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups", "amr"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self.introspection:
            doc["introspection_endpoint"] = self.issuer + "/introspect"
        if self.end_session:
            doc["end_session_endpoint"] = self.issuer + "/logout"
        doc.update(self.discovery_overrides)
        return doc

    def sign(self, claims: dict, key=None, header: dict | None = None) -> str:
        key = key or self.key
        return jwt.encode(header or {"alg": "RS256", "kid": key.kid or "idp-1"}, claims, key)

    def id_token_for(self, person: dict, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": nonce, **person}
        claims.update(self.tamper.get("claims", {}))
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.sign(claims, self.tamper.get("key"), self.tamper.get("header"))

    def _client_ok(self) -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            return (auth.username, auth.password) == (self.client_id, self.client_secret)
        return (request.form.get("client_id"), request.form.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )

    def wsgi(self) -> Flask:
        app = Flask("fake_idp")

        @app.get("/.well-known/openid-configuration")
        def well_known():
            if self.down:
                abort(503)
            return jsonify(self.discovery())

        @app.get("/jwks")
        def jwks():
            if self.down:
                abort(503)
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            args = request.args
            self.authorizations.append(dict(args))
            if args.get("client_id") != self.client_id or args.get("redirect_uri") not in self.redirect_uris:
                return "unknown client or redirect_uri", 400
            if args.get("response_type") != "code" or args.get("code_challenge_method") != "S256":
                return "code flow with PKCE S256 only", 400
            if "openid" not in args.get("scope", "").split():
                return "openid scope missing", 400
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "person": dict(self.next_person),
                "nonce": args.get("nonce"),
                "challenge": args["code_challenge"],
                "redirect_uri": args["redirect_uri"],
            }
            query = {"code": code, "state": args.get("state", ""), "iss": self.issuer}
            return redirect(f"{args['redirect_uri']}?{urlencode(query)}")

        @app.post("/token")
        def token():
            time.sleep(self.token_delay)
            if not self._client_ok():
                return jsonify(error="invalid_client"), 401
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or request.form.get("redirect_uri") != grant["redirect_uri"]:
                return jsonify(error="invalid_grant"), 400
            verifier = request.form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != grant["challenge"]:
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            access = secrets.token_urlsafe(24)
            self.tokens[access] = grant["person"]
            return jsonify(
                access_token=access,
                token_type="Bearer",
                expires_in=300,
                id_token=self.id_token_for(grant["person"], grant["nonce"]),
            )

        @app.get("/userinfo")
        def userinfo():
            bearer = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
            person = self.tokens.get(bearer)
            if person is None:
                return jsonify(error="invalid_token"), 401
            return jsonify(person)

        @app.post("/introspect")
        def introspect():
            if not self._client_ok():
                return jsonify(error="invalid_client"), 401
            return jsonify(active=False)

        @app.get("/logout")
        def logout():
            self.logouts.append(dict(request.args))
            target = request.args.get("post_logout_redirect_uri")
            return redirect(target) if target else "signed out"

        return app


@contextmanager
def running_provider(redirect_uris: list[str]):
    """Serve a FakeProvider on 127.0.0.1 (a free port) for the duration of the block."""
    provider = FakeProvider(redirect_uris=list(redirect_uris))
    server = make_server("127.0.0.1", 0, provider.wsgi(), threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(timeout=10)
