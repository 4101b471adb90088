"""A live portal on a loopback port, with demo data, driven by Debian's Chromium."""

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal.extensions import db
from tests.conftest import fresh_database, migrated_app

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
# Chromium flags for a closed network (no Google look-ups, no background traffic).
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


@pytest.fixture(scope="session")
def live_server_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp, "browser")
    app = migrated_app(url, tmp, WTF_CSRF_ENABLED=True, PORTAL_BASE_URL="http://127.0.0.1")
    with app.app_context():
        from portal.demo import seed_demo_data

        seed_demo_data()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_server_app):
    app = live_server_app
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PORTAL_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run must install it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# A refused form answers 401/409/422/429 by design; Chromium logs that as a failed load.
# Anything else (a missing asset, a 500, a CSP violation) still fails the test.
EXPECTED_STATUS = re.compile(r"Failed to load resource: the server responded with a status of (401|409|422|429)")


class PageWatch:
    """Records what a page asked for, and what the browser complained about."""

    def __init__(self, page, base):
        self.external, self.console_errors = [], []
        page.on("request", lambda r: None if r.url.startswith((base, "data:")) else self.external.append(r.url))
        page.on(
            "console",
            lambda m: (
                self.console_errors.append(m.text) if m.type == "error" and not EXPECTED_STATUS.search(m.text) else None
            ),
        )


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.watch = PageWatch(page, live_server)
    yield page
    assert page.watch.external == [], "pages must not reach outside the portal"
    assert page.watch.console_errors == [], "CSP violations or script errors"
    context.close()


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """Run axe-core in the page (evaluated over CDP, so the page's CSP is untouched)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    assert len(result["passes"]) > 10, "axe-core did not really run"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in impacts
    ]
