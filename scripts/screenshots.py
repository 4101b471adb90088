"""Screenshots for the README, made from the demo data: `.venv/bin/python scripts/screenshots.py`.

A throwaway portal in a temporary directory (database, instance config and secrets, uploads; never
instance/), set up as scripts/run.sh does it (`flask db upgrade`, `flask portal seed-demo`,
`flask portal demo-logins`), served on a free loopback port, driven by Debian's Chromium. Saves into
docs/screenshots/: the partner home, one of that partner's referrals (the first with news) and staff
Today, each at 1280 px and at 390 px (phone). Each page is loaded once and captured at both widths:
opening a referral marks its news seen, so a second load would lose the "new" markers.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from portal.demo import DEMO_PASSWORD
from portal.mfa import totp
from portal.mfa.demo import DEMO_TOTP_SECRET

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PARTNER = "partner@lakeside-ortho.example"
STAFF = "staff@riverbend-pt.example"
# (width, height of the viewport, most pixels kept of a long page): a desktop screen, a phone.
WIDTHS = {"": (1280, 800, 1400), "-phone": (390, 844, 1700)}
# As the browser tests run it (tests/browser/conftest.py): no Google look-ups, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
STARTED = time.monotonic()
EXTERNAL: list[str] = []  # requests that left the portal: there must be none (the pages vendor their assets)


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portal_config(tmp: Path, port: int) -> dict:
    """Everything that names a file points into tmp (these win over the environment and any instance file)."""
    instance = tmp / "instance"
    return {
        "INSTANCE_PATH": str(instance),
        "PORTAL_ENV": "development",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite:///{instance / 'portal.db'}",
        "UPLOAD_DIR": str(instance / "uploads"),
        "PHI_KEYRING_PATH": str(instance / "keyring.bin"),
        "OUTBOX_SINK_DIR": str(instance / "outbox"),
        "RATELIMIT_STORAGE_URI": f"portal+sqlite://{instance}/ratelimit.db",
        "AUDIT_CHECKPOINT_LOG": "",
        "SMTP_HOST": "",
    }


def flask(config: dict, *args: str) -> str:
    """One `flask` command of scripts/run.sh, against the throwaway instance."""
    env = {**os.environ, "PORTAL_ENV": "development", "FLASK_APP": f"portal:create_app({config!r})"}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def serve(config: dict, port: int):
    """The portal in a thread of this process (werkzeug), as the browser tests serve it."""
    from werkzeug.serving import make_server

    from portal import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log: the progress lines are the output
    app = create_app(config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sign_in(context, base: str, email: str):
    """Password, then for staff the code of the demo authenticator key (`flask portal demo-code`)."""
    page = context.new_page()
    page.on("request", lambda r: None if r.url.startswith((base, "data:")) else EXTERNAL.append(r.url))
    page.goto(base + "/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    if "/auth/mfa/verify" in page.url:
        page.get_by_label("Verification code").fill(totp.code_at(DEMO_TOTP_SECRET, totp.time_step()))
        with page.expect_navigation():
            page.get_by_role("button", name="Verify").click()
    if "/auth/" in page.url:
        sys.exit(f"sign-in of {email} stopped at {page.url}")
    return page


def capture(page, name: str) -> None:
    """The loaded page at each width (no reload): the top of it, at most the cap tall."""
    for suffix, (width, height, cap) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)  # let the layout settle after the resize
        full = page.evaluate("document.documentElement.scrollHeight")
        path = OUT / f"{name}{suffix}.png"
        page.screenshot(path=path, full_page=True, clip={"x": 0, "y": 0, "width": width, "height": min(full, cap)})
        say(f"  {path.relative_to(ROOT)}  {width}x{min(full, cap)}  {path.stat().st_size // 1024} KB")


def main() -> None:
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-screenshots-") as tmp:
        port = free_port()
        config = portal_config(Path(tmp), port)
        say(f"throwaway instance in {tmp}")
        say("flask db upgrade")
        flask(config, "db", "upgrade")
        say("flask portal seed-demo")
        say("  " + flask(config, "portal", "seed-demo").strip())
        say("flask portal demo-logins")
        print(flask(config, "portal", "demo-logins").rstrip(), flush=True)
        server = serve(config, port)
        base = config["PORTAL_BASE_URL"]
        say(f"serving on {base}")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                first = WIDTHS[""]
                viewport = {"width": first[0], "height": first[1]}

                say(f"partner home, signed in as {PARTNER}")
                context = browser.new_context(viewport=viewport)
                page = sign_in(context, base, PARTNER)
                page.wait_for_load_state("networkidle")
                capture(page, "partner-home")
                # The referral with the most kinds of news (status, updates, scores), else the first in the list.
                items = page.locator(".news-item")
                links = [
                    (items.nth(i).locator(".news-what").inner_text().count("·"), items.nth(i).locator("a").first)
                    for i in range(items.count())
                ]
                link = max(links, key=lambda x: x[0])[1] if links else page.locator(".referral-table a").first
                href = link.get_attribute("href")
                say(f"a referral page: {href}")
                page.goto(base + href if href.startswith("/") else href)
                page.wait_for_load_state("networkidle")
                capture(page, "partner-referral")
                context.close()

                say(f"staff Today, signed in as {STAFF}")
                context = browser.new_context(viewport=viewport)
                page = sign_in(context, base, STAFF)
                if not page.url.endswith("/staff/"):  # signing in lands staff on Today
                    page.goto(base + "/staff/")
                page.wait_for_load_state("networkidle")
                capture(page, "staff-today")
                context.close()
                browser.close()
        finally:
            server.shutdown()
    if EXTERNAL:
        sys.exit(f"the pages asked for something outside the portal: {EXTERNAL}")
    say(f"done: {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
