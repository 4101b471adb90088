"""A real OpenID Provider (panva/node-oidc-provider, OpenID Certified) on loopback.

Node.js from the machine runs tests/oidc/provider.mjs; its packages are installed from
package-lock.json with `npm ci` the first time (a fresh clone, CI). Without Node.js the
tests that need it are skipped locally and fail in CI.

A test describes who signs in next with ``provider.person(login, sub=..., email=...,
email_verified=..., groups=..., amr=...)`` (the provider's test endpoint, guarded by a token
made per run); ``None`` leaves a claim out.
"""

import json
import os
import secrets
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

OIDC_DIR = Path(__file__).resolve().parent
START_TIMEOUT = 90  # node's start and an RSA key on a slow, busy machine
HTTP_TIMEOUT = 30


@dataclass(frozen=True)
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str
    admin_token: str = ""

    def _admin(self, method: str, path: str, **kwargs) -> dict:
        response = requests.request(
            method,
            f"{self.issuer}/test/people{path}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=HTTP_TIMEOUT,
            **kwargs,
        )
        response.raise_for_status()
        return response.json()

    def person(self, login: str, *, sub: str | None = None, **claims) -> dict:
        """Who signs in as ``login`` at the provider's sign-in page from now on: e-mail = login and
        email_verified true unless given; a claim given as None is not sent at all."""
        person = {"sub": sub or f"sub-{login}", "email": login, "email_verified": True, **claims}
        return self._admin("PUT", "/" + login.strip().lower(), json=person)

    def forget_people(self) -> None:
        self._admin("DELETE", "")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing: the SSO tests need Node.js and npm")
        pytest.skip(
            f"{tool} is not installed: the single sign-on tests need Node.js and npm (apt-get install nodejs npm)"
        )
    return path


def ensure_installed() -> None:
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = _need("npm")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=OIDC_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in tests/oidc failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_provider(
    redirect_uris: list[str],
    log_path: Path,
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None,
):
    """Start the provider with one confidential client; yields its issuer and credentials. The
    client's sign-out redirect URIs default to the portal's (/auth/sso/signed-out) beside each
    redirect URI; with ``backchannel_logout_uri`` the provider posts logout tokens there."""
    ensure_installed()
    node = _need("node")
    if post_logout_redirect_uris is None:
        post_logout_redirect_uris = [
            uri.removesuffix("/auth/sso/callback") + "/auth/sso/signed-out"
            for uri in redirect_uris
            if uri.endswith("/auth/sso/callback")
        ]
    client = RunningProvider(
        issuer="",
        client_id="portal-test",
        client_secret=secrets.token_urlsafe(24),
        admin_token=secrets.token_urlsafe(24),
    )
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": client.client_id,
        "OIDC_CLIENT_SECRET": client.client_secret,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_POST_LOGOUT_REDIRECT_URIS": ",".join(post_logout_redirect_uris),
        "OIDC_BACKCHANNEL_LOGOUT_URI": backchannel_logout_uri or "",
        "OIDC_ADMIN_TOKEN": client.admin_token,
        "OIDC_PORT": "0",
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [node, "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            line = _first_line(proc)
            issuer = json.loads(line)["issuer"]
            yield RunningProvider(
                issuer=issuer,
                client_id=client.client_id,
                client_secret=client.client_secret,
                admin_token=client.admin_token,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _first_line(proc: subprocess.Popen) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not box or not box[0].strip():
        proc.kill()
        pytest.fail("the OpenID provider did not start (see its log in the pytest tmp directory)")
    return box[0]
