"""The single sign-on blueprint: sign-in pages (views.py) and settings pages (settings_views.py)."""

from flask import Blueprint

bp = Blueprint("sso", __name__)
