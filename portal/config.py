"""Configuration: defaults <- instance file <- environment <- test overrides.

The environment wins over the instance file (unlike the sketch in shared/docs) so an
operator can override a value at deploy time without editing files on the host.
Production refuses to start without its secrets; development generates them into
``instance/portal.toml`` once and reuses them, so restarts keep sessions and data.
"""

import os
import secrets
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENVIRONMENTS = ("development", "production", "test")

# Secrets have no default anywhere; production must be given each of them.
REQUIRED_SECRETS = ("SECRET_KEY", "PHI_KEK")

DEFAULTS = {
    "PORTAL_ENV": "production",
    "PORTAL_NAME": "Riverbend Physical Therapy",
    "PORTAL_BASE_URL": "http://127.0.0.1:5000",
    "DATABASE_URL": None,  # filled with instance/portal.db when unset
    # None: counters in instance/ratelimit.db, shared by the workers of one host (core/ratelimit.py);
    # several hosts share redis://... instead.
    "RATELIMIT_STORAGE_URI": None,
    "LOGIN_RATE_LIMIT": "10 per minute",
    "LOGIN_MAX_FAILURES": 10,
    "LOGIN_LOCKOUT_MINUTES": 15,
    "SESSION_IDLE_MINUTES": 15,
    "SESSION_ABSOLUTE_HOURS": 12,
    "INVITE_TTL_HOURS": 72,
    "RESET_TTL_MINUTES": 60,
    "MFA_MAX_FAILURES": 5,
    "MFA_REMEMBER_DAYS": 30,  # 0 turns "remember this browser" off; at most 30
    # Patients' own consent (portal/econsent): a sign link's days, identity tries, minutes a confirmed identity counts.
    "PATIENT_LINK_DAYS": 7,
    "PATIENT_LINK_MAX_FAILURES": 5,
    "PATIENT_SESSION_MINUTES": 20,
    "OIDC_HTTP_TIMEOUT": 10,
    # Single sign-on (portal/sso/domains.py): the practice's own e-mail domains, comma-separated; no partner
    # organization's provider may claim them (the domains of staff and admin addresses are refused too).
    "PRACTICE_EMAIL_DOMAINS": "",
    # FHIR API (portal/api): access-token lifetime, longest client-assertion lifetime, JWKS URL fetches.
    "API_TOKEN_SECONDS": 300,
    "API_ASSERTION_MAX_SECONDS": 300,
    "API_HTTP_TIMEOUT": 10,
    # FHIR subscription delivery (portal/api/delivery.py, `flask fhir deliver`): tries per notification,
    # exponential back-off with jitter (first delay, ceiling), how long a claimed notification stays
    # leased to one worker, how many a worker claims at once, and how often an idle worker looks.
    "FHIR_DELIVERY_MAX_ATTEMPTS": 8,
    "FHIR_DELIVERY_BACKOFF_SECONDS": 30,
    "FHIR_DELIVERY_BACKOFF_MAX_SECONDS": 6 * 3600,
    "FHIR_DELIVERY_LEASE_SECONDS": 120,
    "FHIR_DELIVERY_BATCH_SIZE": 20,
    "FHIR_DELIVERY_POLL_SECONDS": 2,
    "MAIL_FROM": "portal@riverbend-pt.example",
    # Outbox delivery (portal/notifications). No SMTP_HOST: messages go to OUTBOX_SINK_DIR.
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_SECURITY": "starttls",  # none | starttls | tls
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT": 30,
    "OUTBOX_SINK_DIR": None,  # filled with instance/outbox when unset
    "OUTBOX_MAX_ATTEMPTS": 12,  # with the back-off below: about half a day to a day of retries
    "OUTBOX_BACKOFF_SECONDS": 60,
    "OUTBOX_BACKOFF_MAX_SECONDS": 6 * 3600,
    "OUTBOX_LEASE_SECONDS": 300,
    "OUTBOX_BATCH_SIZE": 20,
    "OUTBOX_POLL_SECONDS": 5,
    # Audit trail (portal/audit/chain.py): the newest signed checkpoint may be at most this old
    # (`flask audit verify`; 0 turns the check off); the sealer writes a heartbeat checkpoint after
    # a third of it without events. AUDIT_CHECKPOINT_LOG: a file outside the database that every
    # checkpoint is appended to (O_APPEND); empty: none.
    "AUDIT_CHECKPOINT_MAX_AGE_MINUTES": 15,
    "AUDIT_CHECKPOINT_LOG": "",
    "PHI_KEYRING_PATH": None,  # filled with instance/keyring.bin when unset
    "UPLOAD_DIR": None,  # filled with instance/uploads when unset
    "MAX_CONTENT_LENGTH": 30 * 1024 * 1024,
    "LOG_LEVEL": "INFO",
    "PORTAL_TIMEZONE": "America/Chicago",
    # How long a SQLite write waits for another writer before the request answers 503.
    "SQLITE_BUSY_TIMEOUT_SECONDS": 5.0,
    # Operations (portal/ops, docs/operations.md). LOG_FORMAT "json": one JSON object per line.
    "LOG_FORMAT": "text",
    # Proxies (nginx) whose X-Forwarded-For names the client; gunicorn reads the same variable.
    "FORWARDED_ALLOW_IPS": "127.0.0.1",
    "DATABASE_CONNECT_TIMEOUT_SECONDS": 10,  # PostgreSQL: a host that does not answer fails fast
    "READY_MIN_FREE_MB": 512,  # /readyz: free space wanted under UPLOAD_DIR (and a SQLite database)
    "METRICS_TOKEN": "",  # /metrics: a bearer token that may read it (empty: none)
    "METRICS_ALLOWED_IPS": "",  # /metrics: addresses or networks that may read it without a token
    "UPLOAD_TEMP_MAX_AGE_MINUTES": 60,  # `flask phi sweep`: partial uploads older than this go
    "UPLOAD_ORPHAN_GRACE_HOURS": 24,  # `flask phi sweep`: documents with no row this long go
    "ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "REFERRAL_ATTACHMENTS_MAX_BYTES": 25 * 1024 * 1024,
    "REFERRAL_MAX_ATTACHMENTS": 10,
}

INT_SETTINGS = {k for k, v in DEFAULTS.items() if isinstance(v, int)}


class ConfigError(RuntimeError):
    """The portal cannot start with this configuration."""


def load_config(app, test_config: dict | None = None) -> None:
    cfg = dict(DEFAULTS)
    instance = Path(app.instance_path)
    instance_file = instance / "portal.toml"
    if instance_file.exists():
        with instance_file.open("rb") as fh:
            cfg.update(tomllib.load(fh))
    for key in list(DEFAULTS) + list(REQUIRED_SECRETS):
        if key in os.environ:
            cfg[key] = os.environ[key]
    if test_config:
        cfg.update(test_config)

    env = cfg["PORTAL_ENV"]
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    for key in INT_SETTINGS:
        try:
            cfg[key] = int(cfg[key])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} must be a whole number") from exc

    missing = [k for k in REQUIRED_SECRETS if not cfg.get(k)]
    if missing:
        if env == "production":
            raise ConfigError(
                "production refuses to start without secrets: set "
                + ", ".join(missing)
                + " in the environment or instance/portal.toml (see README)"
            )
        cfg.update(ensure_dev_secrets(instance, missing))

    cfg["DATABASE_URL"] = cfg["DATABASE_URL"] or f"sqlite:///{instance / 'portal.db'}"
    cfg["PHI_KEYRING_PATH"] = cfg["PHI_KEYRING_PATH"] or str(instance / "keyring.bin")
    cfg["UPLOAD_DIR"] = cfg["UPLOAD_DIR"] or str(instance / "uploads")
    cfg["RATELIMIT_STORAGE_URI"] = cfg["RATELIMIT_STORAGE_URI"] or f"portal+sqlite://{instance.resolve()}/ratelimit.db"
    cfg["OUTBOX_SINK_DIR"] = cfg["OUTBOX_SINK_DIR"] or str(instance / "outbox")
    if cfg["SMTP_SECURITY"] not in ("none", "starttls", "tls"):
        raise ConfigError("SMTP_SECURITY must be none, starttls or tls")
    try:
        ZoneInfo(str(cfg["PORTAL_TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"PORTAL_TIMEZONE must be an IANA time zone such as America/Chicago, not {cfg['PORTAL_TIMEZONE']!r}"
        ) from exc

    is_dev = env == "development"
    database_uri = normalise_database_url(cfg["DATABASE_URL"])
    # hide_parameters: a failed statement must not carry PHI into logs or tracebacks.
    engine_options = {"pool_pre_ping": True, "hide_parameters": True}
    if database_uri.startswith("sqlite"):
        try:
            engine_options["connect_args"] = {"timeout": float(cfg["SQLITE_BUSY_TIMEOUT_SECONDS"])}
        except (TypeError, ValueError) as exc:
            raise ConfigError("SQLITE_BUSY_TIMEOUT_SECONDS must be a number of seconds") from exc
    elif database_uri.startswith("postgresql+psycopg"):
        engine_options["connect_args"] = {"connect_timeout": cfg["DATABASE_CONNECT_TIMEOUT_SECONDS"]}
    if cfg["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError("LOG_FORMAT must be text or json")
    cfg.update(
        SQLALCHEMY_DATABASE_URI=database_uri,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        RATELIMIT_ENABLED=cfg.get("RATELIMIT_ENABLED", True),
        # A counter store that fails (full disk, Redis away) raises limits' StorageError: a 503 page.
        RATELIMIT_STORAGE_OPTIONS=cfg.get("RATELIMIT_STORAGE_OPTIONS", {"wrap_exceptions": True}),
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The cookie holds only the session token; idle and absolute timeouts live in its row, so the
        # cookie is not re-signed and re-sent on every response (only when its content changes).
        SESSION_REFRESH_EACH_REQUEST=False,
        SESSION_COOKIE_SECURE=cfg.get("SESSION_COOKIE_SECURE", not is_dev and env != "test"),
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,  # the CSRF token lives as long as the session does
        # Flask-WTF's HTTPS-only check wants a Referer naming this host, but every page says
        # Referrer-Policy: no-referrer, so browsers send none: behind TLS every form failed with 400.
        # The token stays the defence (with SameSite=Lax cookies and the cross-site check).
        WTF_CSRF_SSL_STRICT=cfg.get("WTF_CSRF_SSL_STRICT", False),
        TESTING=env == "test" or cfg.get("TESTING", False),
    )
    app.config.from_mapping(cfg)


def normalise_database_url(url: str) -> str:
    """Accept the postgres:// spelling hosting platforms use; always drive psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def ensure_dev_secrets(instance: Path, missing: list[str]) -> dict:
    """Generate development secrets into instance/portal.toml (mode 0600) once."""
    instance.mkdir(parents=True, exist_ok=True)
    generated = {key: secrets.token_urlsafe(32) for key in missing}
    path = instance / "portal.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write("# Generated development secrets. Never use these in production.\n")
        for key, value in generated.items():
            fh.write(f'{key} = "{value}"\n')
    return generated
