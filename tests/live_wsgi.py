"""WSGI and `flask --app` entry point of the live test portal (tests/live.py): its configuration
arrives as JSON in PORTAL_TEST_CONFIG, so gunicorn's workers and the commands share it."""

import json
import os

from portal import create_app

app = create_app(json.loads(os.environ["PORTAL_TEST_CONFIG"]))
