"""LOG_FORMAT=json: one JSON object per line, with the request id; a line break in a message
cannot forge a second line."""

import json
import logging

import pytest

from portal import create_app
from portal.config import ConfigError
from tests.conftest import test_config as config_for


@pytest.fixture
def portal_logger():
    """The "portal" logger is one per process: give the suite's handlers back afterwards."""
    logger = logging.getLogger("portal")
    saved = list(logger.handlers)
    yield logger
    logger.handlers[:] = saved


def test_json_logs_are_one_line_each_with_the_request_id(app, tmp_path, capfd, portal_logger):
    json_app = create_app(config_for(app.config["DATABASE_URL"], tmp_path, LOG_FORMAT="json"))

    @json_app.get("/log-something")
    def log_something():
        json_app.logger.warning("first line\nforged: second line")
        return "ok"

    log_something.required_permission = "public"
    response = json_app.test_client().get("/log-something", headers={"X-Request-ID": "req-0123456789"})
    assert response.status_code == 200
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    entry = json.loads(next(line for line in lines if "forged" in line))
    assert entry["message"] == "first line\nforged: second line" and entry["level"] == "WARNING"
    assert entry["request_id"] == "req-0123456789" and entry["logger"] == "portal"
    assert entry["time"].endswith("+00:00")
    assert not any(line.startswith("forged") for line in lines)


def test_an_unknown_log_format_stops_start_up(app, tmp_path, portal_logger):
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        create_app(config_for(app.config["DATABASE_URL"], tmp_path, LOG_FORMAT="yaml"))
