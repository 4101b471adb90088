"""FHIR API benchmark: token issue rate, and referral submissions per second through the API next to the web form.

    .venv/bin/python -m bench.bench_fhir                 # SQLite file database
    .venv/bin/python -m bench.bench_fhir --pg URL        # PostgreSQL (database dropped and recreated)

Everything runs in one process through Flask's test client against a migrated database, so the
figures compare code paths (not network or gunicorn): each request is a full request with its
own commit. Assertions are signed before the clock starts (that is the EHR's work); the token
figure is the server's: parse, key lookup, signature check (RS384 with RSA-2048, or ES384 with
P-384), jti insert, token insert, audit row, commit. Submissions: the same referral (no
attachment) as a FHIR transaction Bundle and as the web form's POST; both end in submit_referral.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import fresh_database


def _app(url: str, instance: str):
    from flask_migrate import upgrade

    from portal import create_app

    app = create_app(
        {
            "PORTAL_ENV": "test",
            "SECRET_KEY": "bench-" + "x" * 32,
            "PHI_KEK": "bench-kek-" + "y" * 32,
            "DATABASE_URL": url,
            "INSTANCE_PATH": instance,
            "RATELIMIT_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
            "ARGON2_PROFILE": "test",
            "SERVER_NAME": None,
        }
    )
    with app.app_context():
        upgrade()
    return app


def _fresh(url: str | None, tmp: Path) -> str:
    return fresh_database(url, tmp / "bench_fhir.db")


def _setup(app):
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.core.permissions import Role
    from portal.extensions import db
    from portal.partners.models import Organization, OrganizationKind
    from tests.api.helpers import make_client, valid_npi

    with app.app_context():
        org = Organization(name="Bench Ortho", kind=OrganizationKind.ORTHOPEDICS)
        db.session.add(org)
        db.session.flush()
        admin = User(email="bench-admin@example.com", full_name="Bench Admin", role=Role.ADMIN)
        partner = User(
            email="bench-partner@example.com",
            full_name="Dr. Bench",
            role=Role.PARTNER,
            organization_id=org.id,
            npi=valid_npi(),
            password_hash=hash_password("correct horse battery"),
        )
        db.session.add_all([admin, partner])
        db.session.flush()
        client = make_client(org, admin=admin)
        db.session.commit()
        return client.client_id, str(partner.public_id), partner.npi


class _ClientRef:
    def __init__(self, client_id):
        self.client_id = client_id


def _rate(fn, items) -> tuple[float, float]:
    """Requests per second over the whole run, and the median latency in ms."""
    times = []
    start = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return len(items) / (time.perf_counter() - start), statistics.median(times) * 1000


def run(url: str | None, tokens: int, referrals: int) -> list[tuple[str, float, float]]:
    from tests.api.helpers import ASSERTION_TYPE, assertion, ec_key, referral_bundle, rsa_key

    with tempfile.TemporaryDirectory() as tmp:
        app = _app(_fresh(url, Path(tmp)), tmp)
        client_id, partner_id, npi = _setup(app)
        ref = _ClientRef(client_id)
        http = app.test_client()
        results = []

        def token(signed):
            response = http.post(
                "/fhir/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": "system/Task.read system/ServiceRequest.write",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": signed,
                },
            )
            assert response.status_code == 200, response.get_json()
            return response.get_json()["access_token"]

        with app.test_request_context():  # the test config's PORTAL_BASE_URL is the token audience
            rs = [assertion(ref, rsa_key()) for _ in range(tokens)]
            es = [assertion(ref, ec_key()) for _ in range(tokens)]
        token(rs.pop())  # warm-up
        results.append(("token, RS384 assertion", *_rate(token, rs)))
        results.append(("token, ES384 assertion", *_rate(token, es)))

        headers = {"Authorization": f"Bearer {token(assertion_for(app, ref))}", "Content-Type": "application/fhir+json"}
        import json

        bundles = [
            json.dumps(referral_bundle(npi, family=f"Bench{n}", reason="Knee pain on stairs"))
            for n in range(referrals + 1)
        ]

        def api(body):
            response = http.post("/fhir", data=body, headers=headers)
            assert response.status_code == 201, response.get_json()

        web = app.test_client()
        login = web.post(
            "/auth/login", data={"email": "bench-partner@example.com", "password": "correct horse battery"}
        )
        assert login.status_code == 302

        def form(n):
            response = web.post(
                "/partner/referrals/new",
                data={
                    "given_name": "Ana",
                    "family_name": f"Web{n}",
                    "birth_date": "1980-04-02",
                    "sex": "female",
                    "phone": "(608) 555-0142",
                    "address_line1": "12 Elm St",
                    "city": "Madison",
                    "postal_code": "53703",
                    "us_state": "WI",
                    "reason": "Knee pain on stairs",
                    "icd10_codes": "M54.50",
                    "requested_service": "evaluate_and_treat",
                    "urgency": "routine",
                    "visit_preference": "either",
                    "clinician": partner_id,
                    "clinician_npi": npi,
                },
            )
            assert response.status_code == 302, response.status_code

        api(bundles.pop())
        form(-1)  # warm-up both paths
        results.append(("referral via FHIR transaction Bundle", *_rate(api, bundles)))
        results.append(("referral via web form POST", *_rate(form, list(range(referrals)))))
        return results


def assertion_for(app, ref):
    from tests.api.helpers import assertion, ec_key

    with app.test_request_context():
        return assertion(ref, ec_key())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (dropped and recreated); default SQLite")
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--referrals", type=int, default=200)
    args = parser.parse_args()
    results = run(args.pg, args.tokens, args.referrals)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(
        f"{db}, Python {platform.python_version()}, {platform.machine()}; {args.tokens} tokens, "
        f"{args.referrals} referrals per path\n"
    )
    print("| operation | per second | median latency |")
    print("|---|---:|---:|")
    for name, rate, median in results:
        print(f"| {name} | {rate:,.0f} | {median:.1f} ms |")
    api, web = results[2][1], results[3][1]
    print(f"\nAPI / web form submissions: {api / web:.2f}x; ES384 / RS384 tokens: {results[1][1] / results[0][1]:.2f}x")


if __name__ == "__main__":
    main()
