"""Every GET page of every role, at a phone's width (390 px) and a desktop's (1280 px): nothing scrolls
sideways (document.documentElement.scrollWidth <= window.innerWidth) and axe-core finds no serious or
critical violation. Also: the compact header's menu button works with the keyboard.

The pages come from the app's url_map; who may open each, and its path, from the access matrix
(tests/test_access_matrix.py). Path parameters are filled from the demo data. Endpoints that are not HTML
pages are listed in NOT_PAGES with the reason; every other GET endpoint must be visited by some role.
One browser; one sign-in per user, each page loaded once and measured at both widths. Admins and partner
admins open the staff's and partners' pages too: those are measured again, axe runs on them once (ROLES).
"""

import re

import pytest
from sqlalchemy import func, select

from portal.demo import DEMO_PASSWORD
from portal.extensions import db
from tests.browser.conftest import AXE, PageWatch, axe_violations
from tests.browser.test_pages import sign_in
from tests.test_access_matrix import MATRIX

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)

# GET endpoints that are not HTML pages, or are reached only half-way through a flow tested elsewhere.
NOT_PAGES = {
    "static": "files",
    "home.index": "redirects to the role's home page",
    "home.health": "liveness probe (text)",
    "ops.ready": "readiness probe (JSON)",
    "ops.scrape": "Prometheus metrics (text)",
    "auth.redeem": "a one-time link from an e-mail (tests/browser/test_sign_in_security.py)",
    "auth.set_password": "reached only through a one-time link",
    "mfa.verify": "only half-way through signing in (every staff and admin sign-in here passes it)",
    "mfa.setup": "only half-way through signing in (demo practice users are enrolled)",
    "mfa.passkey": "needs a registered passkey; the demo has none (tests/browser/test_passkeys.py)",
    "sso.callback": "the identity provider's redirect back (tests/sso)",
    "relationships.export_prospects": "CSV download",
    "relationships.download_resource": "file download",
    "learning.download": "file download",
    "referrals.attachment": "file download",
    "intake.attachment": "file download",
    "consent.consent_document": "PDF download",
    "outcomes.partner_report_csv": "CSV download",
    "outcomes.partner_report_pdf": "PDF download",
    "outcomes.organization_report_csv": "CSV download",
    "outcomes.organization_report_pdf": "PDF download",
    "outcomes.analytics_csv": "CSV download",
    "econsent.copy": "PDF download",
}
NOT_PAGE_PREFIXES = {
    "fhir.": "FHIR API and SMART discovery (JSON, bearer tokens)",
    "patient_consent.": "the patient's pages, opened only through a link held in their session "
    "(tests/browser/test_econsent.py checks them)",
}

# Who browses; which column of the access matrix says what they may open; and whose pages they share.
# A shared page (same template, only the navigation differs) is measured at both widths again, but axe
# runs on it only for the first role: the admin's navigation is axe-checked on every admin-only page.
ROLES = {
    "anonymous": (None, "anonymous", None),
    "partner": ("partner@lakeside-ortho.example", "partner_b", None),
    "partner_admin": ("padmin@lakeside-ortho.example", "partner_admin_a", "partner_b"),
    "staff": ("staff@riverbend-pt.example", "staff", None),
    "admin": ("admin@riverbend-pt.example", "admin", "staff"),
}

# Reports, for a failing page: the elements that stick out past the right edge.
WIDEST = """() => {
  const limit = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > limit + 0.5) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push(name + ' (' + Math.round(r.right) + 'px)');
    }
  }
  return out.slice(-4);
}"""


def is_page(endpoint: str) -> bool:
    return endpoint not in NOT_PAGES and not endpoint.startswith(tuple(NOT_PAGE_PREFIXES))


def get_endpoints(app) -> list[str]:
    return sorted({rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods})


# Pages the matrix opens only with a forged token (a 404): visited here with a genuine one (demo_ids).
TOKEN_PAGES = {"notifications.unsubscribe": ("anonymous", "{unsubscribe_path}")}


def pages_for(app, role: str) -> list[tuple[str, bool]]:
    """(path template, run axe) for each HTML page this role may open (the matrix expects 200)."""
    _, column, shares = ROLES[role]
    shared = set(_allowed(app, shares)) if shares else set()
    extra = [(path, True) for e, (who, path) in TOKEN_PAGES.items() if who == role and e in app.view_functions]
    return [(MATRIX[e][1], e not in shared) for e in _allowed(app, column)] + extra


def _allowed(app, column: str) -> list[str]:
    found = []
    for endpoint in get_endpoints(app):
        if not is_page(endpoint) or endpoint not in MATRIX:  # a route missing from MATRIX fails test_access_matrix
            continue
        method, _, expected = MATRIX[endpoint]
        if method == "GET" and expected.get(column, expected["*"]) == 200:
            found.append(endpoint)
    return found


def test_every_get_page_is_visited_or_explicitly_excluded(live_server_app):
    app = live_server_app
    visited = {e for role in ROLES for e in _allowed(app, ROLES[role][1])} | set(TOKEN_PAGES)
    missing = [e for e in get_endpoints(app) if is_page(e) and e in MATRIX and e not in visited]
    assert missing == [], "a GET endpoint no role may open: add it to NOT_PAGES with the reason"
    assert set(NOT_PAGES) <= set(app.view_functions), "NOT_PAGES names an endpoint that is gone"


@pytest.fixture(scope="module")
def demo_ids(live_server_app):
    """Path parameters for the matrix's templates, from the demo data (organization B = Lakeside)."""
    from portal.accounts.models import User
    from portal.api.models import ApiClient
    from portal.consent.models import Consent
    from portal.econsent.models import ConsentRequest
    from portal.outcomes.models import Instrument, OutcomeScore
    from portal.partners.models import Organization
    from portal.referrals.models import Attachment, Referral
    from portal.relationships.models import Event
    from portal.stories.models import Story, StoryState

    with live_server_app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        # The Lakeside referral with the most to show: scores, an attachment, a consent for Lakeside.
        scores = select(func.count(OutcomeScore.id)).where(OutcomeScore.referral_id == Referral.id).scalar_subquery()
        files = select(func.count(Attachment.id)).where(Attachment.referral_id == Referral.id).scalar_subquery()
        consented = (
            select(func.count(Consent.id))
            .where(Consent.patient_id == Referral.patient_id, Consent.grantee_organization_id == org.id)
            .scalar_subquery()
        )
        referral = db.session.scalar(
            select(Referral)
            .where(Referral.organization_id == org.id)
            .order_by(consented.desc(), scores.desc(), files.desc(), Referral.id)
            .limit(1)
        )
        staff = db.session.scalar(select(User).where(User.email == "staff@riverbend-pt.example"))
        admin = db.session.scalar(select(User).where(User.email == "admin@riverbend-pt.example"))
        api_client = db.session.scalar(select(ApiClient).where(ApiClient.organization_id == org.id).limit(1))
        if api_client is None:
            from tests.api.helpers import make_client

            api_client = make_client(org, admin=admin, name="Lakeside EHR")
        consent_request = db.session.scalar(
            select(ConsentRequest).where(ConsentRequest.patient_id == referral.patient_id).limit(1)
        )
        if consent_request is None:
            from portal.econsent import services
            from portal.econsent.models import Channel, Language, Topic

            consent_request, _ = services.create_request(
                staff,
                referral.patient,
                organization=org,
                clinician=None,
                topics=[Topic.PROGRESS_UPDATES],
                consent_expires_on=None,
                channel=Channel.QR,
                language=Language.ENGLISH,
            )
        published = db.session.scalar(
            select(Story).where(Story.state == StoryState.PUBLISHED).order_by(Story.id).limit(1)
        )
        score = db.session.scalar(
            select(OutcomeScore).order_by((OutcomeScore.referral_id == referral.id).desc(), OutcomeScore.id).limit(1)
        )
        from portal.notifications.catalog import Category
        from portal.notifications.unsubscribe import unsubscribe_url

        one_click = unsubscribe_url("partner@lakeside-ortho.example", Category.REFERRAL_UPDATES)
        ids = {
            "unsubscribe_path": one_click.removeprefix(live_server_app.config["PORTAL_BASE_URL"].rstrip("/")),
            "org_b": org.public_id,
            "user_b": db.session.scalar(select(User.public_id).where(User.email == "partner@lakeside-ortho.example")),
            "score_b": score.public_id,
            "referral_b": referral.public_id,
            "patient_b": referral.patient.public_id,
            "event": db.session.scalar(select(Event.public_id).order_by(Event.id).limit(1)),
            "instrument": db.session.scalar(select(Instrument.public_id).order_by(Instrument.id).limit(1)),
            "story_b": db.session.scalar(select(Story.public_id).order_by(Story.id).limit(1)),
            "published_story": published.public_id if published else None,
            "api_client_b": api_client.public_id,
            "consent_request_b": consent_request.public_id,
        }
        db.session.commit()
    assert all(ids.values()), f"the demo data lacks something these pages need: {ids}"
    return ids


def serious_violations(page) -> list[str]:
    """Like conftest.axe_violations, faster: axe-core is injected once per page load and details are
    collected for violations only (the page is checked twice, at each width)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert len(result["passes"]) > 10, "axe-core did not really run"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def check_page(page, path: str, problems: list[str], run_axe: bool = True) -> None:
    response = page.goto(path)
    if response is None or response.status != 200:
        problems.append(f"{path}: status {response.status if response else 'none'}")
        return
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            problems.append(f"{path} at {width}px: {scroll}px wide, scrolls sideways; {page.evaluate(WIDEST)}")
        if run_axe:
            problems.extend(f"{path} at {width}px: {v}" for v in serious_violations(page))


@pytest.fixture(scope="module")
def signed_in(browser, live_server):
    """new_context(email, width): a context signed in as that user. Each user signs in once per module (a
    TOTP code works once, so signing in again could wait for the next time-step); later contexts reuse the
    cookies."""
    states: dict[str, dict] = {}

    def new_context(email: str | None, width: int):
        options = {"base_url": live_server, "viewport": {"width": width, "height": 900}}
        if email in states:
            return browser.new_context(storage_state=states[email], **options)
        context = browser.new_context(**options)
        if email:
            page = context.new_page()
            sign_in(page, email, DEMO_PASSWORD)
            page.wait_for_load_state()
            assert "/auth/" not in page.url, f"{email} did not sign in"
            states[email] = context.storage_state()
            page.close()
        return context

    return new_context


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_fits_and_passes_axe_at_both_widths(signed_in, live_server, live_server_app, demo_ids, role):
    context = signed_in(ROLES[role][0], 1280)
    page = context.new_page()
    watch = PageWatch(page, live_server)
    problems: list[str] = []
    pages = pages_for(live_server_app, role)
    assert pages, role
    for template, run_axe in pages:
        check_page(page, template.format_map(demo_ids), problems, run_axe)
    context.close()
    assert watch.external == [], "pages must not reach outside the portal"
    assert watch.console_errors == [], "CSP violations, missing assets or script errors"
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("email", ["partner@lakeside-ortho.example", "admin@riverbend-pt.example"])
def test_menu_button_opens_the_navigation_by_keyboard_on_a_phone(signed_in, email):
    context = signed_in(email, 390)
    page = context.new_page()
    page.goto("/")
    button = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Main")
    assert button.is_visible() and button.get_attribute("aria-expanded") == "false"
    assert not nav.is_visible(), "the menu starts closed on a phone"
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    assert nav.is_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false" and not nav.is_visible()
    assert page.evaluate("() => document.activeElement.classList.contains('menu-toggle')")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert nav.is_visible() and not button.is_visible(), "desktop: navigation always shown, no menu button"
    context.close()


def test_design_system_page_shows_each_component(signed_in):
    context = signed_in("admin@riverbend-pt.example", 390)
    page = context.new_page()
    page.goto("/admin/design/")
    for name in ("Card", "Badge", "Table that stacks", "Form row", "Empty state", "Pager"):
        assert page.get_by_role("heading", name=name, exact=True).is_visible(), name
    # On a phone the table's rows are cards, each cell labelled with its column.
    cell = page.locator("table.table td[data-label='Patient']").first
    assert cell.is_visible()
    assert re.search(r"block|grid", cell.evaluate("el => getComputedStyle(el).display"))
    context.close()
