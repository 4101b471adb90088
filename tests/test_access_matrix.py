"""Every route x every role, with the status each must get.

A route missing from MATRIX fails test_every_route_is_in_the_matrix: new work must
add its routes here. Object routes use organization B's objects, so a partner of
organization A must get 404 (not 403: the object does not exist for them).
"""
import pytest

from portal.core.permissions import Role
from tests import factories
from tests.conftest import sign_in

ROLES = ["anonymous", "partner_a", "partner_b", "partner_admin_a", "staff", "admin"]
LOGIN = "login"  # a redirect to the sign-in page

# endpoint: (method, path template, {role: expected}); "*" is the default for other roles.
MATRIX = {
    "static": ("GET", "/static/css/portal.css", {"*": 200}),
    "home.index": ("GET", "/", {"*": 302}),
    "home.health": ("GET", "/healthz", {"*": 200}),
    "home.staff": ("GET", "/staff/", {"anonymous": LOGIN, "staff": 200, "admin": 200, "*": 403}),
    "auth.login": ("GET", "/auth/login", {"anonymous": 200, "*": 302}),
    "auth.logout": ("POST", "/auth/logout", {"anonymous": LOGIN, "*": 302}),
    "auth.forgot_password": ("GET", "/auth/forgot", {"*": 200}),
    "auth.redeem": ("GET", "/auth/link/invite?t=forged", {"*": 400}),
    "auth.set_password": ("GET", "/auth/set-password", {"*": 400}),
    "auth.account": ("GET", "/auth/account", {"anonymous": LOGIN, "*": 200}),
    "partners.home": ("GET", "/partner/", {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200}),
    "partners.users": ("GET", "/partner/users", {"anonymous": LOGIN, "partner_admin_a": 200, "*": 403}),
    "partners.deactivate_user": ("POST", "/partner/users/{user_b}/deactivate",
                                 {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403}),
    "partners.reactivate_user": ("POST", "/partner/users/{user_b}/reactivate",
                                 {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403}),
    "admin.home": ("GET", "/admin/", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.organizations": ("GET", "/admin/organizations", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.organization": ("GET", "/admin/organizations/{org_b}", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.users": ("GET", "/admin/users", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.deactivate_user": ("POST", "/admin/users/{user_b}/deactivate",
                              {"anonymous": LOGIN, "admin": 302, "*": 403}),
    "admin.reactivate_user": ("POST", "/admin/users/{user_b}/reactivate",
                              {"anonymous": LOGIN, "admin": 302, "*": 403}),
}


def test_every_route_is_in_the_matrix(app):
    assert sorted(set(app.view_functions) - set(MATRIX)) == [], "add new routes to MATRIX"
    assert sorted(set(MATRIX) - set(app.view_functions)) == [], "MATRIX names a route that is gone"


@pytest.fixture
def world(db, org_a, org_b):
    """Objects of both organizations, and one user per role."""
    users = {
        "partner_a": factories.make_user(Role.PARTNER, org_a),
        "partner_b": factories.make_user(Role.PARTNER, org_b),
        "partner_admin_a": factories.make_user(Role.PARTNER_ADMIN, org_a),
        "staff": factories.make_user(Role.STAFF),
        "admin": factories.make_user(Role.ADMIN),
    }
    ids = {"org_b": org_b.public_id, "user_b": factories.make_user(Role.PARTNER, org_b).public_id}
    return users, ids


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_access(client, world, endpoint, role):
    users, ids = world
    method, path, expected = MATRIX[endpoint]
    want = expected.get(role, expected["*"])
    if role != "anonymous":
        assert sign_in(client, users[role].email).status_code == 302
    response = client.open(path.format(**ids), method=method)
    if want == LOGIN:
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/auth/login")
    else:
        assert response.status_code == want, f"{role} {method} {path}"
