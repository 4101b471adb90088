#!/usr/bin/env bash
# `make run`: set up (venv, instance secrets, migrations, demo data) and serve on :5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PORTAL_ENV="${PORTAL_ENV:-development}"
export FLASK_APP=wsgi
flask=.venv/bin/flask
$flask db upgrade            # also generates instance/portal.toml secrets on first run
$flask portal seed-demo      # only into an empty database: data is kept across runs
$flask portal demo-logins
# The outbox worker delivers e-mail (to instance/outbox/*.eml unless SMTP_HOST is set) and
# stops when gunicorn does.
$flask outbox work &
worker=$!
# The audit sealer extends the tamper-evident hash chain once a minute.
$flask audit seal --every 60 > /dev/null &
sealer=$!
# The FHIR delivery worker posts subscription notifications to partner EHRs.
$flask fhir deliver > /dev/null &
fhir=$!
trap 'kill "$worker" "$sealer" "$fhir" 2>/dev/null || true; wait "$worker" "$sealer" "$fhir" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
.venv/bin/gunicorn --config gunicorn.conf.py wsgi:app
