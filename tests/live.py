"""A real portal for concurrency tests: a freshly migrated database with the demo data, served
by gunicorn with `make run`'s settings (gunicorn.conf.py: two workers of two threads) on a
loopback port, and the `flask` commands (sealer, worker) run as separate processes beside it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from portal.demo import DEMO_PASSWORD
from tests.conftest import fresh_database, migrated_app, test_config

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LivePortal:
    def __init__(self, base: str, config: dict, log: Path):
        self.base, self.config, self.log = base, config, log

    @property
    def env(self) -> dict:
        return {**os.environ, "PORTAL_TEST_CONFIG": json.dumps(self.config), "FLASK_APP": "tests.live_wsgi"}

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(VENV_BIN / "flask"), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def spawn_flask(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(VENV_BIN / "flask"), *args],
            cwd=ROOT,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def signed_in(self, email: str, code: str | None = None) -> requests.Session:
        """A browser-like session signed in as a demo user (with the authenticator code if asked)."""
        s = requests.Session()
        token = CSRF.search(s.get(self.base + "/auth/login").text).group(1)
        r = s.post(self.base + "/auth/login", data={"csrf_token": token, "email": email, "password": DEMO_PASSWORD})
        if r.url.endswith("/auth/mfa/verify"):
            token = CSRF.search(r.text).group(1)
            r = s.post(self.base + "/auth/mfa/verify", data={"csrf_token": token, "code": code})
        assert r.status_code == 200 and "/auth/" not in r.url, f"sign-in of {email} failed ({r.status_code} {r.url})"
        return s

    def csrf(self, session: requests.Session, path: str) -> str:
        return CSRF.search(session.get(self.base + path).text).group(1)


@contextmanager
def serve(tmp: Path, name: str, **overrides):
    """Migrate and seed a fresh database, then serve it with gunicorn until the block ends."""
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp, name)
    instance = tmp / f"{name}-instance"
    app = migrated_app(url, instance, WTF_CSRF_ENABLED=True, **overrides)
    with app.app_context():
        from portal.demo import seed_demo_data
        from portal.extensions import db

        seed_demo_data()
        db.session.commit()
        db.engine.dispose()
    port = _free_port()
    config = dict(test_config(url, instance, WTF_CSRF_ENABLED=True, **overrides))
    config["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = tmp / f"{name}-gunicorn.log"
    portal = LivePortal(f"http://127.0.0.1:{port}", config, log)
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "tests.live_wsgi:app",
            ],
            cwd=ROOT,
            env=portal.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(portal.base + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or its workers still booting
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield portal
    finally:
        server.terminate()
        server.wait(30)
