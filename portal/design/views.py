"""/admin/design: every shared component of static/css/portal.css on one page.

Registered only when the app runs in debug or testing mode (or DESIGN_PAGE is set), and even then only
for administrators, so production never serves it."""

from flask import Blueprint, Flask, render_template

from portal.core.permissions import Permission, requires

bp = Blueprint("design", __name__, url_prefix="/admin/design")


class _Page:
    """A stand-in for a keyset page (portal/core/paging.py), enough for the pager macro."""

    items = [1, 2, 3]
    is_first = False
    total = 128
    total_label = "128"
    next_cursor = "next"
    previous_cursor = "previous"
    param = "cursor"


@bp.get("/")
@requires(Permission.ADMIN_HOME)
def components():
    return render_template("design/components.html", sample_page=_Page())


def init_app(app: Flask) -> None:
    if app.debug or app.testing or app.config.get("DESIGN_PAGE"):
        app.register_blueprint(bp)
