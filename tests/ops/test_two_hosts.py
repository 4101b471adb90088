"""Two app hosts behind nginx, as deploy/ describes them: nginx terminates TLS in front of two
gunicorn instances on different ports that share PostgreSQL, Redis, the uploads and the keyring.

Shown here: a session made through one instance works on the other; rate limits count across both
(Redis); X-Forwarded-For gives the client's address to the limiter and the audit trail; outbox
workers on both deliver each message once; two sealers at once seal each event once (advisory
lock); each instance's workers add up their metrics (prometheus multiprocess); and the deploy site's
nginx configuration passes `nginx -t`.

It needs nginx (Debian package), PostgreSQL and Redis. Outside CI it is skipped with a loud reason
when one is missing; in CI (scripts/test.sh installs and starts them) it must run. On the SQLite pass
of the suite the tests that need both hosts are deselected (tests/ops/conftest.py): two hosts cannot
share a SQLite file, and the PostgreSQL pass runs them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from portal.demo import DEMO_PASSWORD
from tests.conftest import fresh_database, migrated_app
from tests.conftest import test_config as config_for
from tests.live import CSRF, VENV_BIN, LivePortal, _free_port
from tests.notifications.conftest import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PARTNER = "partner@lakeside-ortho.example"
METRICS_TOKEN = "two-hosts-metrics-token-0123456789"
# The proxy's certificate is the test's own, self-signed one.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def _need(what: str, present: bool, how: str) -> None:
    if present:
        return
    message = f"TWO-HOST TEST NOT RUN: {what} is missing ({how})"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run must provide it")
    pytest.skip(message)


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


def _postgres_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or ""
    if not url.startswith(("postgres://", "postgresql")):
        pytest.skip("two hosts share PostgreSQL: this test runs in the PostgreSQL pass of the suite")
    return url


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=5, verify=False).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n" + log.read_text()[-3000:])
        time.sleep(0.2)


def _certificate(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _nginx_conf(tmp: Path, listen: int, upstreams: list[int]) -> Path:
    cert, key = _certificate(tmp)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir(exist_ok=True)
    servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;" for port in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""  # workers read the temp dirs pytest made 0700
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    access_log {tmp}/access.log;
    upstream portal_app {{
{servers}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{listen} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /static/ {{ alias {ROOT}/static/; }}
        location = /metrics {{ return 404; }}
        location / {{
            proxy_pass http://portal_app;
            include {DEPLOY}/nginx/portal-proxy.conf;
        }}
    }}
}}
"""
    )
    return conf


class Hosts:
    def __init__(self, proxy: str, hosts: list[LivePortal], database_url: str, smtp: SmtpServer):
        self.proxy, self.hosts, self.database_url, self.smtp = proxy, hosts, database_url, smtp

    def sql(self, statement: str, **params):
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement), params)
                return result.all() if result.returns_rows else []
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    base_url = _postgres_url()
    _need("nginx", shutil.which("nginx") is not None, "apt-get install nginx")
    _need("Redis on 127.0.0.1:6379", _redis_up(), "apt-get install redis-server; scripts/test.sh starts it")
    tmp = tmp_path_factory.mktemp("two-hosts")
    url = fresh_database(base_url, tmp, "two_hosts")
    shared = tmp / "shared"
    common = {
        "WTF_CSRF_ENABLED": True,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "LOGIN_RATE_LIMIT": "4 per minute",
        "UPLOAD_DIR": str(shared / "uploads"),
        "PHI_KEYRING_PATH": str(shared / "keyring.bin"),
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "READY_MIN_FREE_MB": 1,
        "OUTBOX_BATCH_SIZE": 3,
    }
    app = migrated_app(url, tmp / "seed-instance", **common)
    with app.app_context():
        from portal.demo import seed_demo_data
        from portal.extensions import db

        seed_demo_data()
        db.session.commit()
        db.engine.dispose()

    smtp = SmtpServer().start()
    proxy_port = _free_port()
    prefix = f"two-hosts-{uuid.uuid4().hex}"
    hosts, processes = [], []
    try:
        for n in (1, 2):
            port = _free_port()
            instance = tmp / f"host{n}-instance"
            config = dict(config_for(url, instance, **common))
            config.update(
                # This run's counters only. Only in the hosts' own processes: Flask-Limiter keeps the
                # first key prefix it is given for good, and this test process is shared by the suite.
                RATELIMIT_KEY_PREFIX=prefix,
                PORTAL_BASE_URL=f"https://127.0.0.1:{proxy_port}",
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=smtp.port,
                SMTP_SECURITY="none",
            )
            log = tmp / f"host{n}.log"
            host = LivePortal(f"http://127.0.0.1:{port}", config, log)
            metrics_dir = tmp / f"host{n}-metrics"
            metrics_dir.mkdir()
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [
                            str(VENV_BIN / "gunicorn"),
                            "--config",
                            "gunicorn.conf.py",
                            "--bind",
                            f"127.0.0.1:{port}",
                            "tests.live_wsgi:app",
                        ],
                        cwd=ROOT,
                        env={
                            **host.env,
                            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                            "FORWARDED_ALLOW_IPS": "127.0.0.1",
                        },
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            hosts.append(host)
        for host, process in zip(hosts, processes, strict=True):
            _wait_for(host.base + "/healthz", process, host.log)
        conf = _nginx_conf(tmp, proxy_port, [int(h.base.rsplit(":", 1)[1]) for h in hosts])
        nginx_log = tmp / "nginx.out"
        with nginx_log.open("w") as out:
            nginx = subprocess.Popen(
                ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(nginx)
        proxy = f"https://127.0.0.1:{proxy_port}"
        _wait_for(proxy + "/healthz", nginx, nginx_log)
        yield Hosts(proxy, hosts, url, smtp)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        smtp.stop()


def _sign_in(session: requests.Session, base: str, **kwargs) -> requests.Response:
    token = CSRF.search(session.get(base + "/auth/login", verify=False, **kwargs).text).group(1)
    return session.post(
        base + "/auth/login",
        data={"csrf_token": token, "email": PARTNER, "password": DEMO_PASSWORD},
        verify=False,
        **kwargs,
    )


def test_a_session_made_on_one_host_works_on_the_other_and_through_the_proxy(two_hosts):
    first, second = two_hosts.hosts
    browser = requests.Session()
    response = _sign_in(browser, first.base)
    assert response.status_code == 200 and response.url.endswith("/partner/")
    assert browser.get(second.base + "/partner/").status_code == 200  # the other host knows the session
    cookies = {c.name: c.value for c in browser.cookies}
    through = requests.Session()
    through.cookies.update(cookies)
    answers = [through.get(two_hosts.proxy + "/partner/", verify=False, allow_redirects=False) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    static = requests.get(two_hosts.proxy + "/static/css/portal.css", verify=False)
    assert static.status_code == 200 and "text/css" in static.headers["Content-Type"]


def test_the_proxy_passes_the_request_id_and_readiness_sees_redis(two_hosts):
    response = requests.get(two_hosts.proxy + "/readyz", verify=False)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready", body
    assert body["checks"]["ratelimit"]["ok"] and body["checks"]["database"]["ok"]
    assert len(response.headers["X-Request-ID"]) == 32  # nginx's $request_id, accepted by the portal
    assert requests.get(two_hosts.proxy + "/metrics", verify=False).status_code == 404  # not through the site


def _failed_sign_in(base: str, client: str) -> int:
    session = requests.Session()
    headers = {"X-Forwarded-For": client}
    token = CSRF.search(session.get(base + "/auth/login", verify=False, headers=headers).text).group(1)
    return session.post(
        base + "/auth/login",
        data={"csrf_token": token, "email": "nobody@example.com", "password": "wrong password!"},
        verify=False,
        headers=headers,
    ).status_code


def test_rate_limits_count_across_both_hosts_per_forwarded_client(two_hosts):
    """nginx alternates between the hosts; the limit (4 a minute) holds for the client nginx names,
    whichever host counts, and another client is not affected."""
    codes = [_failed_sign_in(two_hosts.proxy, "203.0.113.7") for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    assert _failed_sign_in(two_hosts.proxy, "203.0.113.8") == 401  # someone else, not throttled
    first, second = two_hosts.hosts
    addresses = {
        row[0] for row in two_hosts.sql("SELECT ip_address FROM audit_events WHERE action = 'auth.login_failed'")
    }
    assert {"203.0.113.7", "203.0.113.8"} <= addresses and "127.0.0.1" not in addresses


def test_outbox_workers_on_both_hosts_deliver_each_message_once(two_hosts):
    first, second = two_hosts.hosts
    from portal import create_app

    app = create_app({k: v for k, v in first.config.items() if k != "RATELIMIT_KEY_PREFIX"})
    with app.app_context():
        from portal.extensions import db
        from portal.notifications.services import enqueue

        for i in range(24):
            enqueue(f"person{i}@example.com", "password_reset", link=f"https://p.example/l/{i}", minutes=60)
        db.session.commit()
        db.engine.dispose()
    workers = [host.spawn_flask("outbox", "work", "--once") for host in (first, second)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]  # generous: a busy 2-core CI
    assert all(worker.returncode == 0 for worker in workers), outputs
    ids = two_hosts.smtp.mailbox.message_ids()
    assert len(ids) >= 24 and len(ids) == len(set(ids)), "a message was delivered twice"
    pending = two_hosts.sql("SELECT count(*) FROM outbox_messages WHERE state <> 'sent'")[0][0]
    sent = two_hosts.sql("SELECT count(*) FROM outbox_messages WHERE state = 'sent'")[0][0]
    assert pending == 0 and sent == len(ids)
    assert all("sent" in output for output in outputs)


def test_two_sealers_at_once_seal_each_event_once(two_hosts):
    first, second = two_hosts.hosts
    two_hosts.sql(
        "INSERT INTO audit_events (occurred_at, action, detail) "
        "SELECT now(), 'test.bulk', '{}' FROM generate_series(1, 3000)"
    )
    sealers = [host.spawn_flask("audit", "seal") for host in (first, second)]
    outputs = [sealer.communicate(timeout=300)[0] for sealer in sealers]
    assert all(sealer.returncode == 0 for sealer in sealers), outputs
    sealed = [int(output.split("Sealed ", 1)[1].split()[0]) for output in outputs]
    total = two_hosts.sql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM audit_events")[0]
    assert total[0] == total[1] == total[3] and total[2] == 1  # every event once, no gap, no duplicate
    assert sum(sealed) >= 3000
    verified = first.flask("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_each_hosts_workers_add_up_their_metrics(two_hosts):
    first, _ = two_hosts.hosts
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    def health_count() -> float:
        text_body = requests.get(first.base + "/metrics", headers=auth).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text_body.splitlines()
            if line.startswith("portal_http_requests_total{") and 'endpoint="home.health"' in line
        )

    before = health_count()
    with requests.Session() as s:  # new connections: gunicorn hands them to either worker
        for _ in range(20):
            s.get(first.base + "/healthz", headers={"Connection": "close"})
    assert health_count() - before == 20
    body = requests.get(first.base + "/metrics", headers=auth).text
    assert "portal_outbox_messages" in body and "portal_backup_last_success_timestamp_seconds" in body


def test_the_deploy_site_passes_nginx_t(tmp_path):
    _need("nginx", shutil.which("nginx") is not None, "apt-get install nginx")
    cert, key = _certificate(tmp_path)
    site = (DEPLOY / "nginx" / "portal.conf").read_text()
    site = (
        site.replace("/etc/ssl/portal/fullchain.pem", str(cert))
        .replace("/etc/ssl/portal/privkey.pem", str(key))
        .replace("snippets/portal-proxy.conf", str(DEPLOY / "nginx" / "portal-proxy.conf"))
        .replace("/var/log/nginx/", f"{tmp_path}/")
    )
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; include {tmp_path}/site.conf; }}\n"
    )
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_the_environment_template_names_only_settings_the_portal_knows():
    from portal.config import DEFAULTS, REQUIRED_SECRETS

    known = set(DEFAULTS) | set(REQUIRED_SECRETS) | {"PORTAL_BIND", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}
    names = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "portal.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names <= known, names - known
