"""A real OpenID Provider (panva/node-oidc-provider, OpenID Certified) on loopback.

Node.js from the machine runs tests/oidc/provider.mjs; its packages are installed from
package-lock.json with `npm ci` the first time (a fresh clone, CI). Without Node.js the
tests that need it are skipped locally and fail in CI.
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

OIDC_DIR = Path(__file__).resolve().parent
START_TIMEOUT = 30


@dataclass(frozen=True)
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing: the SSO tests need Node.js and npm")
        pytest.skip(f"{tool} is not installed (the SSO tests need Node.js)")
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
def running_provider(redirect_uris: list[str], log_path: Path):
    """Start the provider with one confidential client; yields its issuer and credentials."""
    ensure_installed()
    node = _need("node")
    client = RunningProvider(issuer="", client_id="portal-test", client_secret=secrets.token_urlsafe(24))
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": client.client_id,
        "OIDC_CLIENT_SECRET": client.client_secret,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_PORT": "0",
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [node, "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        try:
            line = _first_line(proc)
            issuer = json.loads(line)["issuer"]
            yield RunningProvider(issuer=issuer, client_id=client.client_id, client_secret=client.client_secret)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
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
